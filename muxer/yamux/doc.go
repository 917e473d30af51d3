// Package yamux is Concord's muxer.Muxer: yamux (protocol ID
// "/yamux/1.0.0", the wire protocol of hashicorp/yamux's spec.md) over
// github.com/libp2p/go-yamux/v5, the successor of the v4 that go-libp2p
// used, with the same wire format. The upgrader starts a session once
// security is established: the Initiator after the simultaneous-open
// election is the yamux client (odd stream IDs), the responder the server.
// Callers see only the muxer package's interfaces and errors.
//
// # Defaults and why
//
// Config's zero value means these.
//
//   - Keepalive: a session that has received nothing for 10 s pings, and a
//     ping unanswered for 10 s closes it with muxer.ErrKeepaliveTimeout,
//     so a silent peer is detected within 20 s (go-libp2p's settings take
//     40 s). go-yamux's ping timeout also bounds every write to the
//     connection: a peer that stops reading it is dropped after 10 s with
//     muxer.ErrConnWriteTimeout.
//   - Write stall: a stream Write that makes no progress for 30 s fails
//     with muxer.ErrWriteStalled, whatever the caller's deadline, so
//     nothing waits forever; a transfer that keeps moving never fails. It
//     fails at the bound, late only by as long as its last bytes waited in
//     go-yamux's send queue, which is empty unless the connection is
//     backlogged (TestWriteStallAt; see stream.go, "Write progress"). 30 s
//     rather than 10 s because a reader may pause (a slow consumer, a disk)
//     while the connection is healthy.
//   - Streams: at most 128 inbound streams open and 64 waiting for
//     AcceptStream; beyond either go-yamux resets a new stream at once
//     rather than queue it.
//   - Windows start at the spec's 256 KiB and grow, while the application
//     reads faster than the RTT allows, up to 8 MiB (go-yamux: 16 MiB).
//   - Frames of at most 65519 bytes, header included, so that one fits a
//     Noise message; no read buffer, as secured connections buffer already.
//   - No logging unless Config.Logger is set.
//
// # What this package adds to go-yamux
//
// It uses go-yamux through its API (Config, CloseChan, GoAway, its errors,
// deadlines) and adds only what go-yamux v5.1.0 lacks, each in one place:
//
//   - A check that refuses a window update overflowing the uint32 send
//     window, which go-yamux adds unchecked (the bug class of rust-yamux
//     CVE-2026-31814); see guardedConn. It closes the session with
//     muxer.ErrProtocol.
//   - The connection's first error, to tell muxer.ErrConnClosed from
//     muxer.ErrProtocol, and when the go-away has been written, for
//     Shutdown (guardedConn).
//   - The write-stall timeout (stream.Write, timed by when guardedConn
//     sees the stream's data leave) and Write serialization.
//   - Read serialization: go-yamux's Stream.Read is not safe for
//     concurrent use (stream.rsem).
//   - Shutdown (session.Shutdown): go-yamux's Close sends no go-away and
//     cuts streams at once, and its CloseWithError drops what is queued.
//     Shutdown counts the streams it has handed out, which tell it when
//     they end; go-yamux announces no stream's end.
//   - Err: go-yamux has no accessor for why a session closed; its
//     operations fail with the reason, which Err classifies.
//
// # Memory
//
// An idle session's memory is a few goroutine stacks (go-yamux's receive
// loop, send loop, RTT measurement) and its structures; it does not depend
// on the windows, since go-yamux allocates receive buffers only as data
// arrives (BenchmarkIdleSessionMemory measures it). The windows bound the
// worst case instead: a peer can make a session buffer up to 128 × 256 KiB
// on inbound streams the application does not read, plus up to 8 MiB on
// each stream whose window grew. AcceptStream starts one more goroutine per
// session, which ends with it.
//
// # Cancellation
//
// OpenStream, AcceptStream, Ping and Shutdown honour their context and
// return context.Cause. go-yamux's Ping takes no context: a cancelled Ping
// leaves its goroutine behind until the ping completes, times out (at most
// two ping timeouts) or the session closes. Stream operations use
// deadlines, as net.Conn does; Close, CloseWrite and Reset wake operations
// blocked on the stream.
//
// # Known limits (go-yamux's)
//
//   - Session.Close sends no go-away, and the peer's streams fail at once,
//     even those with data buffered but unread; use Shutdown, or close
//     streams first, when delivery matters.
//   - Done is closed when closing begins; streams are released just after.
//   - CloseRead does not tell the peer; what it sends afterwards is
//     discarded, within the stream's window.
//   - go-yamux recovers panics in its loops, prints them to os.Stderr and
//     closes the session; this cannot be turned off. FuzzSession fails on
//     any such panic.
//
// # Tests
//
// Timing tests run in testing/synctest bubbles over an in-memory buffered
// pipe: go-yamux's timers, created inside the bubble, follow the fake
// clock. A goroutine waiting on a sync.Mutex is not durably blocked and
// would keep the clock from advancing; go-yamux holds its mutexes briefly,
// and this package waits on channels where a wait can be long. The
// nettest.TestConn suite runs on real time, over the pipe and over
// loopback TCP.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package yamux
