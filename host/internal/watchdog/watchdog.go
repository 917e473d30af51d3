// Package watchdog bounds the I/O of the host's stream protocols (ping,
// perf, echo): a context's end fails the operation in progress for good,
// and an optional idle bound limits each Read and Write.
package watchdog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/concordp2p/concord/internal/ctxconn"
)

// Stream is what a Watchdog watches: a stream with a deadline.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
	SetDeadline(time.Time) error
}

// Watchdog wraps a Stream so that ctx's end fails the operation in progress
// and, when idle is positive, each Read and Write must finish within idle of
// its start. ctx is bound to the stream's deadline with internal/ctxconn:
// once ctx has ended, its past deadline is never moved again, so a later
// re-arm cannot undo a cancellation.
type Watchdog struct {
	s    Stream
	idle time.Duration
	b    *ctxconn.Binding
}

// Watch starts watching s for ctx and the idle bound (0: none).
func Watch(ctx context.Context, s Stream, idle time.Duration) *Watchdog {
	return &Watchdog{s: s, idle: idle, b: ctxconn.Bind(ctx, s)}
}

// Fail sets a deadline in the past, for good: operations in progress and
// later ones fail.
func (w *Watchdog) Fail() { w.b.Expire() }

// Arm starts the idle bound for the next operation: the stream's deadline
// becomes now plus the idle bound (no effect without one, or once ctx has
// ended).
func (w *Watchdog) Arm() {
	if w.idle > 0 {
		w.b.SetDeadline(time.Now().Add(w.idle))
	}
}

func (w *Watchdog) Read(p []byte) (int, error) {
	w.Arm()
	return w.s.Read(p)
}

func (w *Watchdog) Write(p []byte) (int, error) {
	w.Arm()
	return w.s.Write(p)
}

// Release stops watching ctx, takes back any deadline it set (leaving none;
// a stream it never touched keeps the caller's) and maps err: if ctx ended
// while the operation ran, the result is context.Cause(ctx), even if the
// operation itself finished (a cancelled exchange is reported as
// cancelled); a deadline error otherwise is the idle timeout's, reported as
// idleErr.
func (w *Watchdog) Release(ctx context.Context, err, idleErr error) error {
	if w.b.Stop() && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err != nil && w.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v): %w", idleErr, w.idle, err)
	}
	return err
}

// ReleaseServer is Release for a server, which owns its stream: it also
// ends the stream, closing it when the exchange ended well or went idle,
// and aborting it (a reset where the stream has one) on any other error.
func (w *Watchdog) ReleaseServer(ctx context.Context, err, idleErr error) error {
	err = w.Release(ctx, err, idleErr)
	if err == nil || errors.Is(err, idleErr) {
		_ = w.s.Close()
	} else {
		Abort(w.s)
	}
	return err
}

// Abort resets s if it can be reset, else closes it.
func Abort(s Stream) {
	if r, ok := s.(interface{ Reset() error }); ok {
		_ = r.Reset()
		return
	}
	_ = s.Close()
}
