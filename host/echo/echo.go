package echo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/concordp2p/concord/host/internal/watchdog"
	"io"
	"time"
)

// ID is the protocol ID negotiated with multistream-select.
const ID = "/echo/1.0.0"

// Implementation constants.
const (
	// DefaultMaxBytes is the most a Server echoes on one stream when
	// Server.MaxBytes is zero.
	DefaultMaxBytes = 16 << 20
	// DefaultIdleTimeout bounds each read and write of a Server whose
	// IdleTimeout is zero.
	DefaultIdleTimeout = 30 * time.Second

	bufSize = 16 << 10
)

var (
	// ErrTooLarge means the client sent more than the server's MaxBytes.
	ErrTooLarge = errors.New("echo: stream exceeds the server's byte limit")
	// ErrIdleTimeout means a read or write of the server made no progress
	// for its idle timeout.
	ErrIdleTimeout = errors.New("echo: stream idle too long")
	// ErrMismatch means the reply differs from the message sent.
	ErrMismatch = errors.New("echo: reply differs from the message")
)

// Stream is what the protocol needs of a negotiated stream. muxer.Stream
// and *net.TCPConn satisfy it. A server aborts a stream that also has a
// Reset() error method, as muxer.Stream does, with Reset rather than Close:
// the peer learns at once, even while it is still writing.
type Stream interface {
	io.Reader
	io.Writer
	CloseWrite() error
	Close() error
	SetDeadline(time.Time) error
}

// Server answers echo streams. The zero value is ready to use, with the
// defaults.
type Server struct {
	// MaxBytes is the most the server echoes on one stream. Zero means
	// DefaultMaxBytes; negative means no limit.
	MaxBytes int64
	// IdleTimeout bounds each read and each write. Zero or negative means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Serve is Server{}.Serve: it echoes with the default limits.
func Serve(ctx context.Context, s Stream) error { return Server{}.Serve(ctx, s) }

// Serve writes back what it reads from s until the client closes its write
// side, then closes its own write side and s, and returns nil. It closes s
// on every path: after ErrIdleTimeout; after ErrTooLarge or another error,
// resetting s when it has a Reset method; and when ctx ends, returning
// context.Cause(ctx).
func (srv Server) Serve(ctx context.Context, s Stream) (err error) {
	limit, idle := srv.MaxBytes, srv.IdleTimeout
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	w := watchdog.Watch(ctx, s, idle)
	defer func() { err = w.ReleaseServer(ctx, err, ErrIdleTimeout) }()
	buf := make([]byte, bufSize)
	var total int64
	for {
		n, rerr := w.Read(buf)
		total += int64(n)
		if limit > 0 && total > limit {
			return fmt.Errorf("%w (%d bytes)", ErrTooLarge, limit)
		}
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("echo: writing: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("echo: reading: %w", rerr)
		}
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("echo: closing write side: %w", err)
	}
	return nil
}

// Echo writes msg to s and closes its write side while it reads the reply
// until the server's EOF. It returns the reply and nil if the reply is msg;
// otherwise the bytes read so far and an error: ErrMismatch if the server
// ended the stream cleanly but the reply differs (or is longer: Echo reads
// at most one byte beyond len(msg)), or the I/O error that ended it.
func Echo(ctx context.Context, s Stream, msg []byte) (reply []byte, err error) {
	w := watchdog.Watch(ctx, s, 0)
	defer func() { err = w.Release(ctx, err, ErrIdleTimeout) }()

	written := make(chan error, 1)
	go func() {
		_, err := w.Write(msg)
		if err != nil {
			err = fmt.Errorf("echo: writing: %w", err)
		} else if err = s.CloseWrite(); err != nil {
			err = fmt.Errorf("echo: closing write side: %w", err)
		}
		written <- err
	}()

	reply = make([]byte, 0, len(msg)+1)
	for len(reply) < cap(reply) {
		n, err := w.Read(reply[len(reply):cap(reply)])
		reply = reply[:len(reply)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			w.Fail() // unblock the writer if it waits for credit
			<-written
			return reply, fmt.Errorf("echo: reading reply: %w", err)
		}
	}
	if !bytes.Equal(reply, msg) {
		// The server ended or overran the reply: whatever the writer is
		// still doing is moot.
		w.Fail()
		<-written
		return reply, fmt.Errorf("%w: got %d bytes, want %d", ErrMismatch, len(reply), len(msg))
	}
	// The server echoed every byte, so it read them all: the writer is
	// done or about to be.
	return reply, <-written
}
