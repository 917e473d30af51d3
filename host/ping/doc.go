// Package ping implements the libp2p ping protocol, /ipfs/ping/1.0.0, over a
// stream that the host has already negotiated with multistream-select.
//
// The host registers Serve (or a configured Server's Serve) as the handler of
// ID, and calls Ping or a Pinger with a stream it opened for ID: to report a
// round-trip time, and to probe an older connection before closing a
// duplicate. The package does no negotiation and knows nothing of hosts.
//
// # Wire format
//
// Spec: libp2p/specs ping/ping.md (r0, 2022-12-09). There is no framing:
//
//	client → server   32 random bytes
//	server → client   the same 32 bytes
//	...               repeated on the same stream as often as the client likes
//	client            closes its write side after its last payload
//	server            echoes what it has read, then closes the stream
//
// The client measures the round-trip time from just before its write to the
// end of the echo's read, and checks that the echo matches (ErrMismatch).
//
// # Limits and defaults
//
//   - A server closes a stream on which no complete payload has arrived,
//     and been echoed, within Server.IdleTimeout of its starting to wait
//     for it, DefaultIdleTimeout (60 s) unless set, and returns
//     ErrIdleTimeout. Bytes trickling in do not extend the wait.
//     go-libp2p v0.51's handler is stricter: it closes a stream after 10 s
//     without a payload and after 30 s in all, so against go-libp2p a
//     Pinger's interval must stay under 10 s and its stream be replaced
//     every 30 s. Concord's 60 s lets `concord ping` use intervals up to a
//     minute on one stream; a stream left open costs a server only a
//     goroutine and 32 bytes.
//   - A stream that ends inside a payload is a protocol error (ErrTruncated);
//     the server resets it when the stream can be reset (muxer.Stream can).
//   - A Pinger bounds each round trip with Pinger.Timeout, DefaultTimeout
//     (10 s) unless set, and waits Pinger.Interval, DefaultInterval (1 s)
//     unless set, between the starts of consecutive pings.
//   - The spec's "at most one outbound and two inbound ping streams per
//     peer" is the host's to enforce: this package sees one stream at a time.
//
// # Streams and ownership
//
// Functions take a Stream, the subset of muxer.Stream they need; net.TCPConn
// satisfies it too. Servers own the stream they are given and always close it
// before returning. Client functions never close the stream: the caller opened
// it and closes it. After a client function fails, the stream is in an
// unknown state (an echo may be half-read) and should be reset or closed.
//
// # Cancellation
//
// Cancelling ctx unblocks any read or write in progress (internal/ctxconn
// sets a deadline in the past, and takes it back when the function returns) and the function returns context.Cause(ctx).
// Servers also close the stream. A client function otherwise leaves the
// stream's deadlines as the caller set them.
package ping
