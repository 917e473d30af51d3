package muxer

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// Conditions that callers check with errors.Is. Operations return them
// inside an *Error that also names the operation and the cause.
var (
	// ErrSessionClosed: the session is closed; the cause in the *Error
	// says why (local Close, keepalive failure, go-away, protocol error,
	// connection error).
	ErrSessionClosed = errors.New("session closed")

	// ErrStreamReset: the stream was reset, by the peer (Error.Remote) or
	// by this side.
	ErrStreamReset = errors.New("stream reset")

	// ErrWriteStalled: a Write made no progress for the stall timeout
	// because the peer granted no flow-control credit on the stream (it
	// stopped reading) or the session could not send.
	ErrWriteStalled = errors.New("write made no progress")

	// ErrKeepaliveTimeout: the peer did not answer a keepalive ping in
	// time; the session was closed.
	ErrKeepaliveTimeout = errors.New("keepalive timeout: peer did not answer a ping")

	// ErrGoAway: the peer ended the session with a go-away frame
	// (Error.Code holds its code).
	ErrGoAway = errors.New("peer sent go-away")

	// ErrProtocol: the peer violated the muxer protocol (bad version or
	// frame type, exceeded receive window, duplicate stream, both sides
	// clients, ...); the session was closed.
	ErrProtocol = errors.New("muxer protocol violation by peer")

	// ErrConnClosed: the underlying connection ended or failed (the peer
	// closed it without a go-away, a read or write error); the session was
	// closed. The cause chain holds the connection's error.
	ErrConnClosed = errors.New("connection closed")

	// ErrStreamsExhausted: the session has used up its stream IDs
	// (2^31 streams per side); open a new session.
	ErrStreamsExhausted = errors.New("stream IDs exhausted")

	// ErrConnWriteTimeout: writing to the underlying connection blocked
	// for the connection write timeout (the peer stopped reading the
	// connection altogether); the session was closed.
	ErrConnWriteTimeout = errors.New("connection write timed out")
)

// Error is the error type returned by sessions and streams.
//
// errors.Is(err, k) holds for its Kind and for everything in the chain of
// its cause Err. Timeout reports true for the Kinds os.ErrDeadlineExceeded
// and ErrWriteStalled, so an *Error is a net.Error.
type Error struct {
	// Op is the operation that failed: "open stream", "accept stream",
	// "read", "write", "close write", "reset", "ping" or "session".
	Op string
	// Kind is the condition: one of this package's sentinels,
	// os.ErrDeadlineExceeded (a deadline passed) or net.ErrClosed (the
	// stream or direction was closed by this side).
	Kind error
	// Remote is true when the peer caused the condition (a reset or a
	// go-away frame it sent).
	Remote bool
	// Code is the error code carried by a reset or go-away frame, else 0.
	Code uint32
	// Err is the cause, if any: for ErrSessionClosed, why the session
	// closed; otherwise the implementation's own error.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	b.WriteString(": ")
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
	} else {
		b.WriteString("unknown error")
	}
	if e.Remote {
		b.WriteString(" by peer")
	}
	if e.Code != 0 {
		b.WriteString(" (code ")
		b.WriteString(strconv.FormatUint(uint64(e.Code), 10))
		b.WriteString(")")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the Kind and the cause, so errors.Is sees both.
func (e *Error) Unwrap() []error {
	switch {
	case e.Kind == nil:
		return []error{e.Err}
	case e.Err == nil:
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Timeout reports whether the operation failed because time ran out: a
// deadline passed or a write stalled.
func (e *Error) Timeout() bool {
	return e.Kind == os.ErrDeadlineExceeded || e.Kind == ErrWriteStalled
}

// Temporary reports the same as Timeout; it exists because net.Error has
// it. A timed-out operation may be retried on the same stream.
func (e *Error) Temporary() bool { return e.Timeout() }
