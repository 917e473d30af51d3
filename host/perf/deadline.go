package perf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// aLongTimeAgo is a deadline in the past: setting it fails blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// watchdog wraps a Stream so that ctx's end fails the operation in progress
// and, when idle is positive, each Read and Write must finish within idle of
// its start. Once ctx has ended, its past deadline is never moved again, so
// a later re-arm cannot undo a cancellation.
type watchdog struct {
	s    Stream
	idle time.Duration
	stop func() bool

	mu      sync.Mutex
	expired bool // the deadline is in the past for good; guarded by mu
}

func watch(ctx context.Context, s Stream, idle time.Duration) *watchdog {
	w := &watchdog{s: s, idle: idle}
	w.stop = context.AfterFunc(ctx, w.fail)
	return w
}

// fail sets a deadline in the past, for good: operations in progress and
// later ones fail.
func (w *watchdog) fail() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.expired = true
	_ = w.s.SetDeadline(aLongTimeAgo)
}

func (w *watchdog) arm() {
	if w.idle <= 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.expired {
		_ = w.s.SetDeadline(time.Now().Add(w.idle))
	}
}

func (w *watchdog) Read(p []byte) (int, error) {
	w.arm()
	return w.s.Read(p)
}

func (w *watchdog) Write(p []byte) (int, error) {
	w.arm()
	return w.s.Write(p)
}

// release stops watching ctx and maps err: if ctx ended while the operation
// ran, the result is context.Cause(ctx), even if the operation itself
// finished, because the stream's deadline is now in the past; a deadline
// error otherwise is the idle timeout's.
func (w *watchdog) release(ctx context.Context, err error) error {
	if !w.stop() {
		return context.Cause(ctx)
	}
	if err != nil && w.idle > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v): %w", ErrIdleTimeout, w.idle, err)
	}
	return err
}

// abort resets s if it can be reset, else closes it.
func abort(s Stream) {
	if r, ok := s.(interface{ Reset() error }); ok {
		_ = r.Reset()
		return
	}
	_ = s.Close()
}
