// Package conformance runs Concord's conformance suite (package conformance
// of the main module) against a go-libp2p v0.52 host, in both roles, and
// compares the outcomes with the committed spec/results/go-libp2p.md.
package conformance
