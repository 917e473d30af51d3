// Package yamux is Concord's muxer.Muxer: yamux (protocol ID
// "/yamux/1.0.0", the wire protocol of hashicorp/yamux's spec.md) over
// github.com/libp2p/go-yamux/v5, the maintained successor of the v4 that
// go-libp2p used, with the same wire format.
//
// The upgrader starts a session once security is established: the side
// with Role Initiator after the simultaneous-open election is the yamux
// client (odd stream IDs), the responder the server. Callers see only the
// muxer package's interfaces and errors, never go-yamux's.
//
// # Defaults and why
//
// Config's zero value means these; every one can be overridden.
//
//   - Keepalive: a session that has received nothing for 10 s pings; a
//     ping unanswered for 10 s closes it with muxer.ErrKeepaliveTimeout.
//     A silent peer is detected within 20 s of its last frame (go-libp2p's
//     settings take 40 s); TestKeepaliveDetectsSilentPeer measures 20 s on
//     the fake clock. go-yamux times a ping with its ConnectionWriteTimeout,
//     which also bounds every write to the connection, so PingTimeout is
//     both: a peer that stops reading the connection altogether is dropped
//     after 10 s (muxer.ErrConnWriteTimeout), the "writes to a peer that
//     does not read fail after 10 s" of DESIGN.md decision 5.
//   - Write stall: a stream Write that makes no progress for 30 s (the
//     peer stopped reading that stream and granted no credit) fails with
//     muxer.ErrWriteStalled, at most 7.5 s late, whatever the caller's
//     deadline: nothing waits forever. Progress resets the clock, so a slow
//     transfer that keeps moving never fails (TestSlowButProgressingWrite
//     runs one for about 6 minutes of fake time). 30 s rather than 10 s
//     because a stream's reader may legitimately pause (a slow consumer,
//     a disk) while the connection itself is healthy.
//   - Streams: at most 128 inbound streams open at once and 64 waiting for
//     AcceptStream; beyond either, go-yamux resets the new stream at once
//     rather than queue it (DESIGN.md decision 7).
//   - Windows: every stream starts at the spec's 256 KiB (go-yamux
//     refuses less) and grows, while the application reads faster than the
//     RTT allows, up to 8 MiB (go-yamux's default is 16 MiB): 80 MB/s per
//     stream at 100 ms RTT, half the worst-case buffering.
//   - Frames of at most 65519 bytes, header included, so that a full frame
//     fits one Noise message (go-yamux's 64 KiB needs two); no read buffer
//     over the secured connection, which buffers already (go-libp2p does the
//     same; go-yamux's default is 4 KiB); RTT measured every 30 s.
//   - No logging: go-yamux's log lines go to io.Discard unless Config.Logger
//     is set, then to slog.
//
// # Memory
//
// An idle session cost about 22 KB per end with the former 4 KiB read
// buffer (BenchmarkIdleSessionMemory on amd64, heap plus stacks after GC:
// 19–22 KB with no stream, 21–24 KB with one idle stream, varying between
// runs), about 4 KiB less without it: about 10 KB of stacks for go-yamux's
// three goroutines (receive loop, send loop, RTT measurement) and the
// session's structures. It
// does not depend on the window sizes: go-yamux allocates receive buffers
// only when data arrives and frees them as it is read. The windows bound
// the worst case instead: a peer can make a session buffer up to 128 ×
// 256 KiB = 32 MiB on inbound streams the application does not read, plus
// up to 8 MiB on each stream whose window grew while the application read
// fast and then stopped. AcceptStream starts one more goroutine per
// session, which ends with it.
//
// # The window-update overflow (rust-yamux CVE-2026-31814)
//
// go-yamux v5.1.0 does not guard the addition of a peer's window update to
// a stream's send window: Stream.incrSendWindow is
// atomic.AddUint32(&s.sendWindow, hdr.Length()), unchecked. Go's uint32
// addition wraps instead of panicking, so the exposure is not a crash: a
// peer's update of 2^32 - 256 KiB on a fresh stream leaves the window at 0
// (TestGoYamuxWindowOverflowUnguarded shows the stream then cannot send),
// and other values leave it anywhere the peer likes. The peer could stall
// its own streams by withholding credit anyway, and it cannot make
// go-yamux buffer more (sends are bounded by the send queue, not the
// window), so the harm is confined to streams of that peer; still, a
// window that contradicts the credit granted is a protocol violation.
// This package guards it: the connection go-yamux sees mirrors each
// stream's send window from the frames crossing it (see guardedConn) and
// refuses an update that would take it past 2^32 - 1, closing the session
// with muxer.ErrProtocol before go-yamux processes the frame
// (TestWindowUpdateOverflow). The mirror errs only towards refusing: an
// update within a few MiB of the 4 GiB limit may be refused although
// go-yamux would have absorbed it, which no implementation's window sizes
// come near.
//
// # Cancellation
//
// OpenStream, AcceptStream and Ping honour their context and return
// context.Cause. go-yamux's Ping takes no context: a cancelled Ping leaves
// its goroutine behind until the ping completes, times out (at most two
// ping timeouts) or the session closes. Stream operations use deadlines,
// as net.Conn does; Close, CloseWrite and Reset wake operations blocked on
// the stream.
//
// # Known limits (go-yamux's)
//
//   - Session.Close closes the connection without a go-away frame, and the
//     peer's streams fail at once, even those with data buffered but not yet
//     read: close streams first (CloseWrite, wait for the peer's EOF) when
//     delivery matters.
//   - Done is closed when closing begins; streams are released just after.
//   - CloseRead does not tell the peer; what it sends afterwards is
//     discarded, within the stream's window.
//   - go-yamux recovers panics in its loops, prints them to os.Stderr and
//     closes the session with an error; this cannot be turned off.
//     FuzzSession fails on any such panic.
//   - The stall timeout relies on go-yamux's write deadlines; a Write's
//     attempts re-arm one every few seconds, so a stream's writer costs a
//     timer only while it writes.
//
// # Tests
//
// Timing tests (keepalive, stall, blocked streams, overflow) run in
// testing/synctest bubbles over an in-memory buffered pipe: go-yamux's
// timers, created by goroutines inside the bubble, follow the fake clock,
// and nothing in go-yamux escapes the bubble (its buffer pool is a
// sync.Pool, which is allowed). go-yamux holds its mutexes only briefly,
// which matters because a goroutine waiting on a sync.Mutex is not durably
// blocked and would keep the fake clock from advancing; for the same reason
// this package serializes Writes, which can wait for a stall timeout, with
// a channel. The nettest.TestConn suite runs on real time, over the pipe
// and over loopback TCP, because it sleeps and sets wall-clock deadlines.
package yamux
