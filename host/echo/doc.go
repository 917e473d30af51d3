// Package echo implements the echo protocol, /echo/1.0.0, over a stream that
// the host has already negotiated with multistream-select: the server sends
// back every byte it reads. Concord uses it to check that a connection
// carries data intact (`concord demo`, tests). There is no libp2p spec.
//
// # Wire format
//
// There is no framing:
//
//	client → server   any bytes, then the client closes its write side
//	server → client   the same bytes, in order, as they arrive
//	server            after the client's EOF: closes its write side, then the stream
//
// The server echoes as it reads, so a client must read while it writes or
// both sides stall once the flow-control windows fill (about 512 KiB over
// yamux); Echo does.
//
// go-libp2p's echo example (examples/echo) uses the same protocol ID with
// other rules: its handler echoes one line and closes, and its client writes
// a line and reads to EOF without closing its write side. Echo of one line
// ending in '\n' works against that handler. That client gets its echo from
// Serve at once but the EOF only after IdleTimeout.
//
// # Limits and defaults
//
//   - Server.MaxBytes bounds the bytes a server echoes on one stream,
//     DefaultMaxBytes (16 MiB) unless set; negative means no limit. When a
//     read takes the total past the limit, the server resets the stream
//     (closes it if the stream cannot be reset) without echoing that read,
//     and returns ErrTooLarge. A reset may overtake echoed bytes still in
//     flight, so the client receives at most MaxBytes, maybe fewer.
//   - Server.IdleTimeout bounds each read and each write of the server,
//     DefaultIdleTimeout (30 s) unless set: a client that neither sends nor
//     reads for that long has its stream closed, and Serve returns
//     ErrIdleTimeout.
//   - The server holds one buffer of 16 KiB per stream.
//
// # Streams and ownership
//
// Functions take a Stream, the subset of muxer.Stream they need; net.TCPConn
// satisfies it too. Serve owns its stream and always closes it before
// returning. Echo never closes the stream (it only closes its write side, as
// the protocol requires); after Echo fails, the stream should be reset or
// closed.
//
// # Cancellation
//
// Cancelling ctx unblocks any read or write in progress (internal/ctxconn
// sets a deadline in the past, and takes it back when the function returns) and the function returns context.Cause(ctx).
// Echo otherwise leaves the stream's deadlines as the caller set them.
package echo
