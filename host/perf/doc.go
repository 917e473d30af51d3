// Package perf implements the libp2p perf protocol, /perf/1.0.0, over a
// stream that the host has already negotiated with multistream-select: the
// client uploads some bytes and asks the server for some bytes back, and
// measures both transfers. `concord perf` and `concord demo` use it; so can
// the libp2p test-plans perf runner, whose JSON lines JSONLine prints.
//
// # Wire format
//
// Spec: libp2p/specs perf/perf.md (r0, 2022-11-16).
//
//	client → server:
//	 0                        8
//	 +------------------------+------------------------------+
//	 | n, uint64 big-endian:  | upload: any length, 0 too,   | EOF: the client
//	 | bytes wanted back      | any content                  | closes its write side
//	 +------------------------+------------------------------+
//
//	server → client, only after the client's EOF (the spec forbids overlap):
//	 +-----------------------------------+
//	 | exactly n bytes (zeros, here)     | the server closes the stream
//	 +-----------------------------------+
//
// n may be anything from 0 to 2^64 - 1. Both sides write in blocks of BlockSize (64 KiB), as the runner's
// implementations do, from one pooled buffer: a transfer allocates nothing
// in proportion to its size.
//
// # Limits and defaults
//
//   - A server sends at most Server.MaxDownload bytes, DefaultMaxDownload
//     (1 GiB) unless set. A header asking for more (the spec allows up to
//     2^64 - 1) is refused at once: the server resets the stream without
//     reading the upload (closes it if it cannot be reset) and Serve returns
//     ErrDownloadTooLarge. The client's Run then fails with the stream's
//     reset error (muxer.ErrStreamReset), or over bare TCP with a connection
//     reset or ErrShortDownload.
//   - The upload is not limited in size: draining costs the server no
//     memory, and the spec's timed benchmarks upload until a timer ends.
//     As the spec says, perf lets a client make the server work: hosts
//     should not serve it to untrusted peers.
//   - Each read and write, on both sides, must finish within IdleTimeout,
//     DefaultIdleTimeout (30 s) unless set; otherwise the operation fails
//     with ErrIdleTimeout (and a server closes its stream).
//   - A client reports progress at most once per Client.ProgressInterval,
//     DefaultProgressInterval (1 s) unless set, the runner's "every second".
//
// # Measurements
//
// Result.Upload runs from the start of Run until the upload is written and
// the write side closed (the bytes may still be in flight); Result.Download
// from then until the server's EOF, so it includes the server draining the
// end of the upload. The runner's final line counts the time to establish
// the connection too: a client that follows it adds that to Result.Total
// before calling JSONLine.
//
// # Streams and ownership
//
// Functions take a Stream, the subset of muxer.Stream they need; net.TCPConn
// satisfies it too. Serve owns its stream and always closes it before
// returning. Run never closes the stream (it only closes its write side, as
// the protocol requires).
//
// # Cancellation
//
// Cancelling ctx unblocks any read or write in progress (internal/ctxconn
// sets a deadline in the past, and takes it back when the function returns) and the function returns context.Cause(ctx);
// Serve also closes its stream.
package perf
