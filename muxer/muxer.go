package muxer

import (
	"context"
	"net"
	"time"

	"github.com/concordp2p/concord/network"
)

// Muxer turns one secured connection into a Session of many streams.
// Implementations are safe for concurrent use and hold no per-connection
// state: one Muxer value serves every connection of a host.
type Muxer interface {
	// ID is the protocol ID negotiated for this muxer, such as
	// "/yamux/1.0.0": the multistream-select token, the Noise
	// stream_muxers entry and the TLS ALPN value.
	ID() string

	// NewSession starts a session over conn, which the session owns from
	// now on (closing the session closes conn). role says which side this
	// is after the simultaneous-open election; RoleUnknown is an error.
	// NewSession does no I/O before it returns, so it needs no context.
	NewSession(conn net.Conn, role network.Role) (Session, error)
}

// Session is one multiplexed connection. All methods are safe for
// concurrent use.
type Session interface {
	// OpenStream opens a new outbound stream: it announces the stream to
	// the peer at once but does not wait for the peer to accept it. It
	// blocks only while too many of this side's streams are still
	// unacknowledged by the peer, until ctx is done or the session closes.
	// ctx bounds only the opening.
	OpenStream(ctx context.Context) (Stream, error)

	// AcceptStream waits for the next inbound stream, until ctx is done or
	// the session closes. On ctx cancellation it returns context.Cause(ctx).
	AcceptStream(ctx context.Context) (Stream, error)

	// Ping sends a ping and returns the round-trip time. It returns at the
	// latest when ctx is done, when the session closes or after the
	// implementation's ping timeout.
	Ping(ctx context.Context) (time.Duration, error)

	// Close closes the session and its connection at once. Streams still
	// open fail with ErrSessionClosed; data the peer has buffered but not
	// read is lost, so protocols that need delivery close their streams
	// (CloseWrite, then wait for the peer's EOF) before the session.
	// Close is idempotent and returns nil after the first call.
	Close() error

	// Done is closed when the session has closed, for whatever reason.
	Done() <-chan struct{}

	// Err returns why the session closed, nil while it is open. It is an
	// *Error with Kind ErrSessionClosed whose cause says more: net.ErrClosed
	// after a local Close, ErrKeepaliveTimeout, ErrGoAway, ErrProtocol,
	// ErrConnWriteTimeout or ErrConnClosed (wrapping the connection's error).
	Err() error

	// IsClosed reports whether Done is closed.
	IsClosed() bool

	// Shutdown closes the session without losing what was written. It
	// waits until every stream it has handed out has ended on this side
	// (Close or Reset; CloseWrite together with CloseRead or a Read that
	// returned EOF; or a reset seen by Read or Write; a deadline or a
	// stall ends nothing),
	// sends GoAway behind everything queued, and waits until it has been
	// written and the peer has closed in return, so that the close sends a
	// FIN and not an RST: the data of every stream closed before Shutdown,
	// that the peer had accepted, reaches the peer's session whole. When
	// ctx ends first it closes at once and streams still open are cut as
	// by Close. It returns nil only when the peer's close proved delivery.
	// A stream the peer opens while Shutdown waits is waited for once
	// AcceptStream has returned it; one not yet accepted when the last
	// stream ends, or that crosses the GoAway, is refused (reset), never
	// accepted and then cut. OpenStream fails from then on.
	Shutdown(ctx context.Context) error

	// ShutdownAsync is Shutdown that does not wait for the peer's close:
	// it returns once every stream handed out has ended and the GoAway
	// has been written (or, when ctx ends first, closes at once and
	// returns its cause, as Shutdown does). The session then closes on
	// its own when the peer closes in return, or after the
	// implementation's linger (yamux: 2 s) if the peer does not; Done
	// tells when. Nothing is lost by returning early: everything written
	// is on its way behind the GoAway, and the close that follows is the
	// same as Shutdown's. A process that exits at once cuts the linger
	// short: its kernel then closes the socket, with a FIN and delivering
	// what it holds, unless bytes from the peer arrive unread in that
	// moment, which turns the close into an RST. A program that must know
	// its data arrived waits for Done (or uses Shutdown).
	ShutdownAsync(ctx context.Context) error

	// NumStreams is the number of streams open in either direction.
	NumStreams() int
}

// Stream is one bidirectional byte stream of a Session. It is a net.Conn
// (its addresses are the session's connection's) plus half-close and reset.
// Methods are safe for concurrent use; concurrent Writes do not interleave
// their bytes.
//
// A Write that makes no progress, because the peer grants no flow-control
// credit or the session cannot send, fails after the implementation's stall
// timeout with an *Error of Kind ErrWriteStalled, whatever the deadline. A
// Write that keeps making progress does not fail however long it takes.
// Deadlines set with SetDeadline and SetWriteDeadline fail operations with
// an *Error of Kind os.ErrDeadlineExceeded; both kinds report Timeout().
type Stream interface {
	net.Conn

	// CloseWrite half-closes the stream: the peer reads the data written
	// so far and then io.EOF. Later Writes fail with net.ErrClosed.
	CloseWrite() error

	// CloseRead stops reading: later Reads fail with net.ErrClosed and
	// data the peer sends is discarded. The peer is not told.
	CloseRead() error

	// Reset aborts both directions at once and tells the peer, whose
	// operations then fail with ErrStreamReset. Unsent data is dropped.
	Reset() error
}

// CodedSession is a Session that can close with an error code sent to the
// peer, which reads it as the Code of its ErrGoAway (Error.Remote set).
// yamux sends the code in a go-away frame, as go-yamux's CloseWithError
// does. The yamux muxer's sessions implement it.
type CodedSession interface {
	Session

	// CloseWithError sends a go-away carrying code, unless code is 0, and
	// closes the session at once, as Close does: data still queued may
	// be lost. Use Shutdown to close without loss.
	CloseWithError(code uint32) error
}

// CodedStream is a Stream whose reset can carry an error code, which the
// peer reads as the Code of its ErrStreamReset (Error.Remote set). The
// yamux muxer's streams implement it.
type CodedStream interface {
	Stream

	// ResetWithError is Reset with code in the reset frame.
	ResetWithError(code uint32) error
}
