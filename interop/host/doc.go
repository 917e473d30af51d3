// Package host holds the interop tests of Concord's host
// (github.com/concordp2p/concord/host) against a go-libp2p v0.52 host
// (libp2p.New: TCP on 127.0.0.1 only, Noise, yamux, no relay, NAT or mDNS).
//
// The case covered is duplicate resolution with a peer that does not speak
// Concord's hello protocol (spec/duplicates.md §5): go-libp2p dials the
// Concord host twice at once — its swarm, configured with
// swarm.NoDelayDialRanker, dials both of Concord's listen addresses in
// parallel and keeps every connection that succeeds — while it opens echo
// streams. Concord's hello proposal is answered "na", so both connections
// are legacy; Concord probes the older one with a ping and drains the one
// go-libp2p does not prefer (fewer streams; the older when tied).
// Each run must end, within 1 s of go-libp2p's Connect returning, with
// exactly one connection on each end (go-libp2p's Network().ConnsToPeer and
// Concord's Conns), the same one (local and remote multiaddrs mirrored), and
// every stream opened meanwhile must echo its bytes in full. The same holds
// for crossing dials (Concord and go-libp2p Connect to each other at once).
//
// go-libp2p cancels a dial still upgrading once another has succeeded,
// resetting that connection, so only some runs of the double dial leave it
// holding two connections (about half on an idle machine, a tenth under
// load); the test runs at least 400 times and on until 40 runs have left
// two connections, within 60 s and 2000 runs.
//
// Known limit, measured: go-libp2p chooses the connection for a new stream
// itself (the one with the most streams, then the newest), and its
// NewStream does not retry on another connection. A stream it opens on the
// connection Concord is closing crosses Concord's GoAway: it fails inside
// NewStream or, when go-libp2p negotiates lazily because it already knows
// the protocol, on its first read or write with the connection closed by
// the remote. Such a stream never reached Concord's echo handler (the tests
// count handler streams cut midway and require none); the tests open it
// once more, as an application would, count it, and require that at most
// 5 % of the streams needed this.
//
// The tests use real loopback sockets; a run takes 7 to 35 ms, so the
// double dial takes 3 to 15 s.
package host
