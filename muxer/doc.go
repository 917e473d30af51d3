// Package muxer defines what Concord needs from a stream multiplexer: a
// Muxer that starts a Session over a secured connection, given the Role
// the simultaneous-open election assigned, and the Stream type sessions
// open and accept.
//
// The upgrader negotiates the muxer (inlined in the security handshake or
// with multistream-select, by Muxer.ID) and the host uses Sessions and
// Streams; neither imports an implementation's library. The one
// implementation is muxer/yamux, over go-yamux. muxer/muxertest is a
// conformance suite for any pair of Sessions (the upgrader's connections
// too), including nettest.TestConn on streams.
//
// # Errors
//
// Every failure is an *Error naming the operation, whose Kind is checked
// with errors.Is against this package's sentinels (ErrSessionClosed,
// ErrStreamReset, ErrWriteStalled, ...), os.ErrDeadlineExceeded or
// net.ErrClosed; its cause Err says more (why a session closed, for
// instance errors.Is(err, ErrKeepaliveTimeout)). Stream.Read returns io.EOF
// itself, unwrapped, after the peer's CloseWrite, as net.Conn readers
// expect.
//
// # Time
//
// Nothing waits forever (ARCHITECTURE.md decision 5): opening honours its
// context, accepting and pinging honour theirs and end when the session
// closes, a Write that makes no progress fails after a stall timeout
// whatever the caller's deadline, and a session whose peer stops
// answering closes after the keepalive bound. Reads wait for data as long
// as the session is alive and no read deadline passes: a silent stream on
// a live session is the application protocol's business.
//
// # Closing
//
// Stream.CloseWrite delivers what was written before it and then EOF
// (decision 6); Stream.Reset aborts. Session.Close is abrupt for streams
// still open: close streams first when delivery matters.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package muxer
