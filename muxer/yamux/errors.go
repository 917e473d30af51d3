package yamux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/concordp2p/concord/muxer"
)

// closeCause classifies why go-yamux shut a session down. cause is
// go-yamux's shutdown error; connErr is the first error the underlying
// connection returned, if any.
func closeCause(cause, connErr error) *muxer.Error {
	e := &muxer.Error{Op: "session", Kind: muxer.ErrSessionClosed}
	var ga *yamux.GoAwayError
	switch {
	case errors.As(cause, &ga) && ga.Remote:
		e.Err, e.Remote, e.Code = muxer.ErrGoAway, true, ga.ErrorCode
	case errors.As(cause, &ga):
		e.Err, e.Code = net.ErrClosed, ga.ErrorCode
	case errors.Is(cause, yamux.ErrKeepAliveTimeout):
		e.Err = muxer.ErrKeepaliveTimeout
	case errors.Is(cause, muxer.ErrProtocol):
		e.Err = cause // refused by the window guard
	case errors.Is(cause, yamux.ErrConnectionWriteTimeout):
		e.Err = muxer.ErrConnWriteTimeout
	case connErr != nil && (errors.Is(cause, connErr) || errors.Is(cause, io.ErrUnexpectedEOF)):
		e.Err = fmt.Errorf("%w: %w", muxer.ErrConnClosed, connErr)
	case errors.Is(cause, io.EOF), errors.Is(cause, io.ErrUnexpectedEOF):
		// The connection ended cleanly (buffered readers may not hand
		// io.EOF to the recorder); the peer closed without a go-away.
		e.Err = fmt.Errorf("%w: %w", muxer.ErrConnClosed, cause)
	default:
		// Everything else go-yamux's receive loop fails with is a frame
		// it refused: bad version or type, exceeded receive window,
		// duplicate stream, both sides clients, unexpected flags.
		e.Err = fmt.Errorf("%w: %w", muxer.ErrProtocol, cause)
	}
	return e
}

// streamErr maps an error from a go-yamux stream operation to a
// *muxer.Error. A Read's io.EOF (the peer's FIN) stays itself; go-yamux
// also returns a bare io.EOF from Write when the session ended because the
// connection did, which is a session error.
func (st *stream) streamErr(op string, err error) error {
	if err == nil || err == io.EOF && op == "read" {
		return err
	}
	var se *yamux.StreamError
	var ga *yamux.GoAwayError
	switch {
	case errors.Is(err, yamux.ErrTimeout):
		return &muxer.Error{Op: op, Kind: os.ErrDeadlineExceeded}
	case errors.Is(err, yamux.ErrStreamClosed):
		return &muxer.Error{Op: op, Kind: net.ErrClosed}
	case errors.As(err, &ga):
		// a session-level error: reported as such, not as a reset
		return st.sess.opErr(op)
	case errors.As(err, &se):
		return &muxer.Error{Op: op, Kind: muxer.ErrStreamReset, Remote: se.Remote, Code: se.ErrorCode}
	case errors.Is(err, yamux.ErrStreamReset) && st.sess.ys.IsClosed():
		// go-yamux resets every stream when the session ends for a
		// reason other than a go-away
		return st.sess.opErr(op)
	case errors.Is(err, yamux.ErrStreamReset):
		// a RST flag on a data frame carries no code
		return &muxer.Error{Op: op, Kind: muxer.ErrStreamReset, Remote: true}
	case st.sess.ys.IsClosed():
		return st.sess.opErr(op)
	}
	return &muxer.Error{Op: op, Kind: muxer.ErrProtocol, Err: err}
}
