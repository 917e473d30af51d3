// Package upgrader holds the interop tests of Concord's upgrader
// (github.com/concordp2p/concord/upgrader) against go-libp2p v0.52: its TCP
// transport with its upgrader (p2p/transport/tcp, p2p/net/upgrader) and a
// full go-libp2p host (libp2p.New, TCP only, on 127.0.0.1).
//
// Every test runs over real loopback TCP, in both directions (Concord dials
// go-libp2p and go-libp2p dials Concord), with Noise and with TLS, and yamux
// as the muxer, inlined in the security handshake or, for the upgrade checks,
// negotiated with multistream-select afterwards. What is checked:
//
//   - the upgrade: each side authenticates the other's peer ID, both agree on
//     the security protocol and the muxer, and report whether the muxer was
//     inlined;
//   - a 64 MiB transfer in each direction at once, each checked by comparing
//     the SHA-256 the sender computed with the one the receiver computed;
//   - 100 concurrent streams, opened from both sides, each echoing 4 KiB;
//   - go-libp2p's ping (/ipfs/ping/1.0.0, 32-byte echoes) against Concord,
//     answered by a handler written in these tests (the host issue will
//     provide Concord's own), and Concord pinging the go-libp2p host's ping
//     service; plus yamux-level pings;
//   - the failures: a dialer, on either side, that expects another peer ID
//     fails with its library's peer-ID mismatch error (Concord's names the
//     security stage), and peers with no security protocol in common fail
//     in the simopen stage.
//
// Application streams are negotiated with go-multistream on both sides, as a
// go-libp2p host does: the test protocols are /interop/echo/1.0.0 (echo
// until EOF), /interop/sink/1.0.0 (read until EOF, answer the byte count and
// SHA-256) and /ipfs/ping/1.0.0.
//
// The tests use real sockets and take 15 to 30 s with -race on two shared cores,
// most of it the 64 MiB transfers. The side-by-side benchmarks are in
// interop/bench, not here.
package upgrader
