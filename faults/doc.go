// Package faults is Concord's fault suite: the TCP failures of the seed
// documents (seeds/README.md in the project's shared notes, summarised in
// FAULTS.md) reproduced between real processes in network namespaces, each
// with its outcome asserted.
//
// The package holds only tests. Each scenario starts peer processes (the
// program of the namespace harness, internal/nspeer) inside a namespace
// pair of internal/netlab, injects the fault with iptables rules,
// per-namespace sysctls, signals (SIGKILL, SIGSTOP) and NFQUEUE delay
// lines, and checks what Concord did. Everything it starts is ended by
// PID and every namespace removed when the test ends, passes or fails,
// or is interrupted.
//
// Run it with
//
//	go test -run TestFaults -v ./faults/
//
// It needs root and Linux (netlab.Require): otherwise it skips, and under
// CI=true it fails. The scenarios run in parallel, each in its own pair;
// the whole suite takes about a minute. The table of results it logs at
// the end is in FAULTS.md at the repository root, with each scenario's
// seed, set-up, assertion and measured figures.
package faults
