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
// network.Role it produced, never the network.Direction.
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
// ErrGated, ErrAdmissionRefused. A failed upgrade always closes the raw
// connection.
//
// # Admission
//
// A Listener upgrades concurrently, so one slow peer never stalls others,
// and bounds what it holds: at most MaxInboundUpgrades (64) upgrades at
// once, MaxInboundUpgradesPerIP (16) from one address, AcceptBacklog (64)
// upgraded connections waiting for Accept. Over a limit the raw connection
// is closed at once, before a byte is read, counted in Stats and reported
// as an InboundRefused event; nothing queues without bound.
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
