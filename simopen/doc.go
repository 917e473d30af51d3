// Package simopen is the first stage of Concord's connection upgrade: it
// decides which side initiates (network.Role) and selects the security
// protocol with multistream-select, including after a TCP simultaneous
// open, where both sides believe they dialed. The upgrader calls Dial on
// connections it dialed and Accept on those it accepted; nothing else
// should need to import it. The wire format is the libp2p
// /libp2p/simultaneous-connect extension (libp2p specs,
// connections/simopen.md, r0), as go-multistream v0.2.2–v0.4.1 implement
// it, with Concord's revision: spec/simopen.md, vectors in
// spec/vectors/simopen.
//
// # The extension
//
// The dialed side pipelines three tokens in one write. A plain responder
// answers "na" to the extension's token and the dialer initiates, as in
// plain multistream-select, at no extra cost. If the peer dialed too, its
// opening write carries the same token: each side then skips the peer's
// pipelined proposal and sends a random number; the larger initiates.
//
//	dialer A                                   dialer B
//	/multistream/1.0.0 /libp2p/simultaneous-connect /noise   (both, one write each)
//	select:<a>  ───────────────────────────────────────────►  (each skips the peer's /noise)
//	            ◄───────────────────────────────────────────  select:<b>
//	a > b:  initiator /noise [first handshake message]  ───►  (one write)
//	            ◄───────────────────────────────────────────  responder
//	            ◄───────────────────────────────────────────  /noise (echo)
//
// The initiator sends its proposal with "initiator" (the reference waits
// for "responder" first). If the peer's skipped proposal named our first
// choice, the peer is known to support it, and both tokens are held back
// and sent with the first handshake message (Result.Pipelined): the
// election then costs no round trip over a single dial; otherwise two
// one-way delays (the reference costs three). Equal numbers: the larger
// peer ID (bytewise) initiates when both IDs are known, else
// ErrSimopenTie, which the dialer retries after Backoff.Delay.
//
// The core is a state machine without I/O (fed tokens, queueing writes);
// Dial and Accept are a thin adapter over a net.Conn. Accept is
// go-multistream's MultistreamMuxer.
//
// # Cancellation and deadlines
//
// ctx bounds Dial and Accept (internal/ctxconn): when it ends, by its
// deadline or by cancellation, a past deadline is set on the conn, so a
// silent peer or one that trickles bytes is cut off; errors then wrap
// context.Cause(ctx). On success the conn has no deadline left from ctx. On error the
// conn is unusable and the caller closes it. The checks of a pipelined
// initiator's conn happen in its first Read, under the caller's deadline
// for the security handshake; the election responder's Dial returns when
// the initiator's first handshake write arrives.
//
// # Limits
//
// Tokens are at most 1024 bytes with their newline (Config.MaxTokenLen may
// lower it), framed by a minimal uvarint, valid UTF-8; "select:" carries a
// canonical base-10 uint64 (no sign, spaces or leading zeros). The peer's
// pipelined proposal is skipped as exactly one token; an election
// responder refuses at most 32 proposals. Bytes read past the last token
// are returned first by the returned conn. Dial writes before it reads, so
// conn's Write must not wait for the peer to read a few hundred bytes (TCP
// and simopentest.Pipe do not; net.Pipe does and would deadlock two
// dialers until the deadline). A simultaneous open with a peer that lacks
// the extension fails with a ProtocolError on both sides, as it would
// without simopen; the dialer retries after a backoff.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package simopen
