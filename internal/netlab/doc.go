// Package netlab is Concord's network laboratory for tests: it builds small,
// real networks out of Linux network namespaces so that tests can reproduce
// TCP behaviour deterministically (for instance a TCP simultaneous open).
//
// It is test infrastructure, imported only from _test.go files of other
// packages; library code never imports it.
//
// # Require
//
// Every test that needs namespaces starts with
//
//	netlab.Require(t)
//
// which checks that the process can use namespaces (Linux, root, `ip` and
// `iptables` on PATH, `ip netns add` works). If it cannot, the test is
// skipped with the reason, except under CI=true, where it fails with the
// reason: in CI these tests are mandatory.
package netlab
