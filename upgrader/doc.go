// Package upgrader turns a raw TCP connection into an authenticated,
// multiplexed Concord connection, and runs listeners that do so for every
// connection they accept. Hosts use it; most applications use the host
// package instead.
//
// # Pipeline
//
//	raw conn ──▶ 1 simopen ──▶ 2 security ──▶ 3 muxer ──▶ *Conn
//	             election +     Noise or TLS   inlined in the handshake,
//	             multistream    as the elected  else multistream-select;
//	             of /noise,     Role; checks    yamux session, initiator
//	             /tls/1.0.0     the peer ID     = client
//
// The dialed side pipelines its multistream header, the simopen token and
// its first security proposal; an accepting peer answers "na" to the token
// and the dialer is the initiator at no extra round trip. When both sides
// dialed (a TCP simultaneous open), the simopen election picks exactly one
// initiator (see package simopen). Everything after stage 1 uses the
// network.Role it produced, never the network.Direction. UpgradeAs lets
// the caller fix the role instead (a coordinated hole punch, where both
// sides dial and a signalling protocol has said who leads): stage 1 is
// then plain multistream-select with no simopen token.
//
// # Deadlines and cancellation
//
// Nothing waits forever (ARCHITECTURE.md decision 5). Config.HandshakeTimeout
// (default 10 s) bounds the whole upgrade on both sides and
// Config.StageTimeouts may bound single stages further. A passed deadline
// fails the upgrade with an *Error naming the stage that was waiting and
// matching ErrHandshakeTimeout; cancelling the context unblocks the stage's
// I/O at once and the error carries the context's cause. Once Upgrade has
// returned, the context no longer affects the connection.
//
// # Errors
//
// Upgrade errors are *Error{Stage, Remote, RemotePeer, Err}. Conditions are
// checked with errors.Is: ErrHandshakeTimeout, ErrPeerIDMismatch,
// ErrSimopenTie (retry after simopen.Backoff's delay), ErrNoCommonProtocol,
// ErrGated, ErrAdmissionRefused, ErrEvicted, ErrFirstByteTimeout. A failed
// upgrade always closes the raw connection.
//
// # Admission
//
// A Listener upgrades concurrently, so one slow peer never stalls others,
// and bounds what it holds: at most MaxInboundUpgrades (64) upgrades at
// once, MaxInboundUpgradesPerIP (16) from one address,
// MaxInboundUpgradesPerSubnet (32) from one /24 or /64, AcceptBacklog (64)
// upgraded connections waiting for Accept. Over a per-source or backlog
// limit the raw connection is closed at once, before a byte is read,
// counted in Stats and reported as an InboundRefused event; nothing queues
// without bound.
//
// A full limit does not refuse while it can evict: a newcomer displaces
// the unauthenticated upgrade that has made the least progress (no byte
// yet, then the simopen stage, then the security handshake; fewer bytes
// received first; the oldest among equals) among those the limit counts:
// the same address, the same subnet, or all. So an honest peer behind an
// attacker's address or in its subnet is admitted too, and one source
// still holds at most its share. The displaced upgrade
// fails with ErrEvicted (counted in Stats.Evicted). An upgrade whose peer
// the security handshake has authenticated is never displaced; only when
// all 64 are authenticated is a newcomer refused (ErrAdmissionRefused). A
// dialer speaks first, so an inbound connection that sends nothing within
// FirstByteTimeout (1 s) fails with ErrFirstByteTimeout.
//
// What an attacker with K sockets on M addresses can do: hold at most
// min(K, 16·M, 32 per /24 or /64, 64) upgrade slots, each for at most 1 s
// if it sends nothing and at most HandshakeTimeout (10 s) if it trickles,
// and only until a newcomer needs the slot. An honest peer then sees its
// connection admitted at once; its handshake is displaced only if every
// other slot is further along than its own, which an attacker can arrange
// only by completing the simopen stage (and for the security stage, sending
// more handshake bytes) on 63 sockets faster than the honest peer does —
// paying a round trip and the protocol's bytes per slot. A persistent
// attacker therefore slows honest peers by at most the handshakes it
// displaces them from, and the dial side's redial after an early reset
// (host.Config.ResetRetries) retries those. Not built: a cost that grows
// for a source that keeps failing.
//
// # Observability
//
// Config.Observer receives typed events: UpgradeStarted, UpgradeFinished
// (role, election record, protocols, per-stage durations, error) and
// InboundRefused. The package never logs.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package upgrader
