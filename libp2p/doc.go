// Package concordlibp2p is Concord's TCP pipeline as a go-libp2p transport:
// a go-libp2p host that swaps its TCP transport for this one keeps its
// swarm, identify, protocols and everything else, and gains what Concord's
// pipeline does differently from go-libp2p's stock TCP transport:
//
//   - dials go out from the listen port (SO_REUSEPORT), and a real TCP
//     simultaneous open (both sides dialed, one socket) is resolved by the
//     simopen election instead of failing both dials;
//   - connections close with FIN after a yamux go-away, not RST, so data
//     written to closed streams before the close reaches the peer;
//   - a silent peer is dropped within 20 s (yamux keepalive 10 s + ping
//     timeout 10 s, TCP_USER_TIMEOUT 20 s, TCP keepalive 15 s);
//   - every stage of the upgrade is bounded, and inbound upgrades pass
//     Concord's admission limits (ARCHITECTURE.md decision 7).
//
// Who should use it: a go-libp2p application that wants those properties on
// TCP. Use it with
//
//	h, err := libp2p.New(concordlibp2p.Transports())
//
// which is go-libp2p's default transports with TCP replaced, or
//
//	libp2p.Transport(concordlibp2p.NewTransport, opts...)
//
// for the TCP transport alone. The transport brings its own security
// (Noise and TLS 1.3, Concord's implementations, with the host's identity
// key) and muxer (yamux, inlined in the handshake); go-libp2p's
// libp2p.Security and libp2p.Muxer options do not apply to it (they still
// apply to the other transports).
//
// # How it plays by go-libp2p's rules
//
//   - Resource manager: every connection opens a connection scope
//     (OpenConnection) before any byte is read or the dial starts; the
//     peer is set on it (SetPeer) before dialing, or once the handshake has
//     authenticated an inbound peer; Done is called exactly once when the
//     raw connection closes, whatever closed it (a failed upgrade, Close,
//     the peer, keepalive).
//   - Connection gater: InterceptAccept runs for every accepted socket
//     before the upgrade; InterceptSecured once the handshake has
//     authenticated the peer, before the muxer (upgrader.RawConnGater);
//     the swarm calls InterceptUpgraded itself.
//   - Simultaneous connect: a dial whose context carries
//     network.WithSimultaneousConnect (go-libp2p's hole puncher) runs
//     with the given role and no election (upgrader.UpgradeAs), as the
//     peer does; the server side's Stat says DirInbound, as go-libp2p's
//     TCP transport reports it.
//   - ConnState: Security "/noise" or "/tls/1.0.0", StreamMultiplexer
//     "/yamux/1.0.0", Transport "tcp", UsedEarlyMuxerNegotiation when the
//     muxer was inlined in the handshake.
//   - Error codes, as go-libp2p's yamux: CloseWithError sends its code in
//     the yamux go-away and closes at once (code 0 closes gracefully, as
//     Close does); ResetWithError sends its code in the stream's reset.
//     The peer's codes come back as network.ConnError and
//     network.StreamError with Remote set (both match network.ErrReset).
//
// # Cancellation
//
// Dial's context bounds the TCP connect and the upgrade; once Dial has
// returned it no longer affects the connection. Close of a connection
// waits at most Config.CloseTimeout (5 s) for the go-away to be written
// and the peer to close in return.
//
// # Limits
//
//   - A stock go-libp2p peer closes with an RST right after its go-away.
//     If this side writes in that instant, the write fails and the
//     session ends with that error rather than the peer's code, as it
//     does between two stock peers.
//   - Streams are not charged to go-libp2p's memory accounting (the
//     swarm still opens their scopes); Concord's yamux bounds its own
//     windows.
//   - Listen takes /ip4|/ip6 addresses with /tcp only; no /dns (go-libp2p
//     resolves those before dialing) and no shared TCP listener
//     (libp2p.ShareTCPListener).
package concordlibp2p
