// Package host is a Concord peer: it listens, dials, keeps exactly one live
// connection per peer pair, detects dead peers, and serves stream
// protocols. It is what applications embed; the packages below it
// (upgrader, security, muxer, transport/tcp) are its parts.
//
//	h, _ := host.New(host.Config{ListenAddrs: addrs})  // zero values: defaults
//	h.SetStreamHandler("/my/proto/1.0.0", serve)
//	s, _ := h.NewStream(ctx, peerID, "/my/proto/1.0.0") // dials if needed
//
// # One connection per peer pair
//
// When a second authenticated connection to a peer appears (crossing
// dials, two addresses dialed at once, a reconnect over a silently dead
// path, a peer that restarted), both ends converge on the same survivor
// and never on none (spec/duplicates.md). Concord peers exchange an
// incarnation (random per process start) and a per-peer connection
// sequence number on the /concord/hello/1.0.0 stream right after the
// upgrade: a new incarnation makes the old connections stale, closed at
// once; otherwise the larger peer ID's newest connection survives. Peers
// without the protocol (go-libp2p, js-libp2p) are handled by probing the
// older connection with a ping before anything is closed; of the live
// ones, the connection with the most open streams survives, the newest of
// those tied (the one go-libp2p itself picks for new streams). A loser
// drains: no new streams, its open streams get Config.DuplicateGrace
// (10 s), then it closes gracefully. Config.KeepAll keeps every connection instead.
// New streams go to the active connection most recently proven alive, and
// a stream cut before its protocol was agreed (its connection lost) is
// reopened on the survivor.
//
// # Dialing
//
// Connect returns an existing connection, joins a dial in flight, or dials
// the peer's addresses with a stagger (250 ms), first success wins.
// Failed addresses back off with exponential backoff and full jitter
// (base 1 s, cap 5 min), visible with Backoff and bypassed by ForceDial.
// The delay spaces the starts of the attempts, so a connect that timed out
// on a silent path (its SYNs retransmitted by the kernel for the connect
// timeout, 5 s) is followed at once while the delay is shorter: for about
// the first 20 s of an outage a SYN is always in flight and a path that
// returns is found within the kernel's SYN retransmission interval (1 s on
// current Linux); a peer that stays unreachable is dialed ever more rarely.
// A connection to the peer, in either direction, forgets the failures
// counted before it (Config.BackoffBase). A
// dial whose simopen election tied is retried after a jittered delay, and
// so is one the peer reset or closed before the security handshake began
// (an accept queue overflow, a listener over its limits): nothing of the
// application's had been sent (Config.TieRetries, Config.ResetRetries).
// KeepConnected keeps a connection up until Forget.
//
// # Nothing waits forever
//
// TCP connect 5 s, the whole upgrade 10 s, stream protocol negotiation
// 10 s, identify 10 s, the hello exchange 10 s, yamux keepalive 10 s + 10 s (a silent peer
// is detected within 20 s), a stream write without progress 30 s,
// TCP_USER_TIMEOUT 20 s. A closed connection leaves the table at once and
// a ConnClosed event says why; a hello that failed or timed out (each half,
// sending and reading, bounded) is a HelloFailed event.
//
// # Closing without loss
//
// Conn.Close and Host.Close are graceful (muxer Session.ShutdownAsync):
// streams get Config.CloseTimeout (5 s) to end, everything written is
// delivered, and the TCP connection ends with FIN, not RST. They return
// once the go-away is written; the wait for the peer's close in answer
// goes on in the background, at most the muxer's linger (2 s), and is
// skipped when the peer has gone, so a peer that does not close on go-away
// does not hold a closing program. Write, close the stream,
// close the connection loses nothing (go-libp2p loses it all).
//
// # Identify
//
// The host serves /ipfs/id/1.0.0 and /ipfs/id/push/1.0.0 (host/identify):
// its protocols, listen addresses (unspecified ones expanded to the
// machine's), agent, public key, the peer's observed address and a signed
// peer record. It asks every new connection's peer, checks the key and the
// record against the authenticated peer ID, and keeps the answer on the
// connection (Conn.Identify, Conn.Identified, PeerIdentified and
// IdentifyFailed events); pushes from the peer update it. Adding or
// removing a stream handler pushes to every peer that serves push. The
// hello is then offered only to peers whose identify lists it; a peer
// whose identify failed or that does not serve it is offered the hello as
// before. Each exchange is bounded by Config.IdentifyTimeout (10 s).
//
// # Protocols and events
//
// The host serves /ipfs/ping/1.0.0 by default, and /echo/1.0.0 and
// /perf/1.0.0 when Config.Protocols asks; streams for unknown protocols are
// answered "na". Config.Observer receives typed events (ConnOpened with the
// election record, ConnClosed with the reason, DuplicateResolved with the
// rule, BackoffScheduled, and the upgrader's events); Config.Logger gets
// debug logs and is silent by default.
//
// # Limits
//
// Peers are known by the addresses given to Connect and KeepConnected;
// there is no peer store or discovery: the addresses identify reports are
// kept on the connection, not dialed. The listen addresses are fixed at
// New, so pushes follow protocol changes only. Two processes running at once with
// one key look like one peer restarting back and forth. TCP only.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package host
