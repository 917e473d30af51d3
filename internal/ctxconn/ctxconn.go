// Package ctxconn is the one way Concord lets a context bound the I/O of a
// connection or stream: while a Binding holds, the context's end
// (cancellation or deadline) sets a past deadline on the connection, so
// blocked reads and writes return at once.
//
// The context's deadline is not copied onto the connection: the
// connection's own timer could fire a moment before the context's, and the
// stage would then report a bare I/O timeout instead of the context's
// cause. Every end goes through the context.
//
// Every stage of the upgrade (simopen, the security handshakes, muxer
// negotiation), the host's stream negotiation and the command-line tool's
// clients use it; nothing else in Concord calls context.AfterFunc to move a
// deadline. See ARCHITECTURE.md.
//
// # The race it closes
//
// A context.AfterFunc that sets a past deadline may already be running
// when the stage it guards completes. Detaching it then returns false, and
// if nobody waits for it, its past deadline can land after the stage has
// cleared the deadline: a stage that succeeded hands on a connection whose
// next read fails with a timeout nobody asked for. Stop waits for a
// callback that has started and then puts back the deadline the caller
// had, so after Stop the context has no effect on the connection, ever.
//
// # Use
//
//	b := ctxconn.Bind(ctx, conn)
//	err := stage(conn)     // blocked I/O returns when ctx ends
//	err = b.Release(err)   // ctx detached, deadline restored, err mapped
//
// A Binding is for one stage at a time on one connection: two live
// Bindings on the same connection overwrite each other's deadlines.
package ctxconn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// Deadliner is what a Binding moves the deadline of: a net.Conn, a
// muxer.Stream, a secured connection.
type Deadliner interface {
	SetDeadline(time.Time) error
}

// aLongTimeAgo is a deadline that has always passed: setting it makes
// pending and later I/O fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// A Binding ties a context to a connection's deadline until Stop or
// Release. Its methods are safe for concurrent use.
type Binding struct {
	ctx     context.Context
	c       Deadliner
	restore time.Time // the caller's deadline, put back by Stop
	stopCb  func() bool
	cbDone  chan struct{} // closed when the callback has set the past deadline
	detach  sync.Once     // the first Stop detaches the callback

	mu    sync.Mutex // orders the callback against SetDeadline and Stop
	ended bool       // ctx ended while bound: the past deadline is set; guarded by mu
	moved bool       // the Binding set a deadline on c; guarded by mu
	done  bool       // Stop has run; guarded by mu
}

// Bind makes ctx's end unblock c's I/O: when ctx ends, a past deadline is
// set on c. If ctx has already ended, the past deadline is set before Bind
// returns. Stop puts back "no deadline".
func Bind(ctx context.Context, c Deadliner) *Binding {
	return BindRestoring(ctx, c, time.Time{})
}

// BindRestoring is Bind for a connection that has the deadline prev (zero:
// none): prev holds while bound, and Stop puts it back.
func BindRestoring(ctx context.Context, c Deadliner, prev time.Time) *Binding {
	b := &Binding{ctx: ctx, c: c, restore: prev, cbDone: make(chan struct{})}
	if ctx.Err() != nil {
		b.ended, b.moved = true, true
		_ = c.SetDeadline(aLongTimeAgo)
	}
	b.stopCb = context.AfterFunc(ctx, b.expire)
	return b
}

func (b *Binding) expire() {
	defer close(b.cbDone)
	b.Expire()
}

// Expire sets the past deadline now and for good, as if ctx had ended:
// operations in progress and later ones fail until Stop. Ended, Stop and
// Release then report an end. It does nothing after Stop.
func (b *Binding) Expire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.ended, b.moved = true, true
	_ = b.c.SetDeadline(aLongTimeAgo)
}

// SetDeadline moves c's deadline to t while the Binding holds (ctx's end
// still overrides it). Once ctx has ended, or after Stop, it does nothing
// and reports whether the deadline stays in the past: a re-armed idle
// timer cannot undo a cancellation.
func (b *Binding) SetDeadline(t time.Time) (ended bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended || b.done {
		return b.ended
	}
	b.moved = true
	_ = b.c.SetDeadline(t)
	return false
}

// Ended reports whether ctx ended (or Expire was called) while the Binding
// held.
func (b *Binding) Ended() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ended
}

// Stop detaches ctx from c. If ctx's callback has started, Stop waits for
// it to finish; then, if the Binding moved c's deadline, it puts back the
// deadline c had before Bind (a Binding that moved nothing touches
// nothing). After
// Stop returns, ctx has no effect on c. It reports whether ctx ended (or
// Expire was called) while bound. Stop is idempotent.
func (b *Binding) Stop() (ended bool) {
	b.detach.Do(func() {
		if !b.stopCb() {
			<-b.cbDone // started (or ran): its SetDeadline must not land after ours
		}
	})
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		b.done = true
		if b.moved {
			_ = b.c.SetDeadline(b.restore)
		}
	}
	return b.ended
}

// Release is Stop for a stage that returned err, and returns the error the
// stage should report:
//   - nil stays nil: the stage finished and c is usable, even if ctx ended
//     at that instant;
//   - if ctx ended while bound, or err is a deadline error while ctx's
//     deadline has passed (a caller's deadline on c at the same instant),
//     the result matches both context.Cause(ctx) and err;
//   - any other err is returned as it is.
func (b *Binding) Release(err error) error {
	ended := b.Stop()
	if err == nil {
		return nil
	}
	if !ended {
		d, ok := b.ctx.Deadline()
		if !ok || !errors.Is(err, os.ErrDeadlineExceeded) || time.Now().Before(d) {
			return err
		}
		<-b.ctx.Done() // the deadline has passed: the context ends now
	}
	return Cause(b.ctx, err)
}

// Cause returns err joined to context.Cause(ctx), so that errors.Is
// matches both; err alone if it already matches the cause.
func Cause(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(err, cause) {
		return err
	}
	return &causeError{cause: cause, err: err}
}

// causeError is a context's cause and the I/O error it provoked.
type causeError struct{ cause, err error }

func (e *causeError) Error() string   { return fmt.Sprintf("%v (%v)", e.cause, e.err) }
func (e *causeError) Unwrap() []error { return []error{e.cause, e.err} }
