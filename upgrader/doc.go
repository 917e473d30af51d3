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
// ErrSimopenTie and ErrPeerWithoutSimopen (both: retry after
// simopen.Backoff's delay), ErrNoCommonProtocol,
// ErrGated, ErrAdmissionRefused, ErrEvicted, ErrFirstByteTimeout. A failed
// upgrade always closes the raw connection.
//
// # Admission
//
// A Listener upgrades concurrently, so one slow peer never stalls others,
// and bounds what it holds: at most MaxInboundUpgrades (64) upgrades at
// once, MaxInboundUpgradesPerIP (16) from one address,
// MaxInboundUpgradesPerSubnet (32) from one /24 or /64, MaxInboundProbation
// (32) connections on probation, MaxInboundProbationPerIP (4) of them from
// one address, and AcceptBacklog (64) upgraded connections waiting for
// Accept. Nothing queues without bound; every refusal and displacement is
// counted in ListenerStats and reported as an InboundRefused event (at the
// door) or an UpgradeFinished error (later).
//
// A full limit neither refuses a newcomer nor lets it displace anyone yet:
// the newcomer goes on probation and its upgrade starts reading. A dialer
// speaks first, so at its first read (which takes up to 512 bytes, the
// whole first flight) the newcomer claims a place: it displaces the
// unauthenticated upgrade that has made the least progress (no byte yet,
// then the simopen stage, then the security handshake; fewer bytes
// received first; the oldest among equals) among those the full limit
// counts — the same address, the same subnet, or all — provided that one
// has made less progress than the newcomer; the displaced upgrade fails
// with ErrEvicted. Otherwise the newcomer is refused (ErrAdmissionRefused,
// naming the limit). So an honest peer behind an attacker's address or in
// its subnet is admitted too, one source still holds at most its share, a
// newcomer that sends nothing displaces no one, and one whose first flight
// is no more than a trickle's cannot push a trickle out. An upgrade whose
// peer the security handshake has authenticated is never displaced. An
// inbound connection that sends nothing within FirstByteTimeout (1 s)
// fails with ErrFirstByteTimeout, on probation or not.
//
// Probation is bounded too. When it is full, the newcomer takes the place
// of the same address's oldest newcomer if that address has its probation
// share, else of the newcomer whose address has the highest failure score
// (then the oldest); a newcomer whose own address scores higher than
// everyone's on probation is refused at once (Stats.RefusedProbation).
//
// Failing costs more each time. Each upgrade from an address that fails
// (displaced, timed out, refused, a protocol error) adds 1 to the
// address's score, which halves every 30 s; a success clears it. Each 8
// points halve the address's per-IP limit (16, 8, 4, 2, then 1); and the
// score decides who loses probation, as above. An honest peer that has not
// failed outranks on probation every address of a flood that has; at most
// 4096 addresses are remembered (the least-scored are forgotten first).
//
// What an attacker with K sockets on M addresses can do: hold at most
// min(K, M × its per-IP limit, 32 per /24 or /64, 64) upgrade slots, each
// for at most 1 s if it sends nothing and at most HandshakeTimeout (10 s)
// if it trickles, and only until a newcomer with more progress needs one;
// and churn the probation set, where its failing addresses rank below a
// peer that has not failed. An honest peer then sees its connection put on
// probation or admitted at once, and its first flight (the multistream
// header and its proposal, ~50 bytes) displaces any slot that has received
// less: a silent one, or a trickle younger than the honest flight's bytes
// at the trickle's rate. To keep it out, the attacker must keep every one
// of 64 slots ahead of that flight — completing the simopen stage on each,
// faster than the honest peer does, and for the security stage sending
// more handshake bytes — paying a round trip and the protocol's bytes per
// slot, while its refused connections raise its addresses' scores. What
// the attacker still costs an honest peer is time in the kernel's accept
// queue behind its connects: measured in FAULTS.md's load table
// ("Attacks on admission"), with the attacker on the same two cores.
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
