package ctxconn

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Deadliner that remembers the last deadline set; gate, when
// not nil, holds every past deadline until it is closed.
type recorder struct {
	mu   sync.Mutex
	last time.Time
	sets int
	gate chan struct{}
}

func (r *recorder) SetDeadline(t time.Time) error {
	if r.gate != nil && !t.IsZero() && t.Before(time.Unix(2, 0)) {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.sets = t, r.sets+1
	return nil
}

func (r *recorder) deadline() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// binder is the shape of a deadline binding: bind, then stop when the stage
// is done.
type binder func(ctx context.Context, c Deadliner) (stop func())

func ctxconnBinder(ctx context.Context, c Deadliner) func() {
	b := Bind(ctx, c)
	return func() { b.Stop() }
}

// naiveBinder is the pattern Concord used before this package (the
// upgrader's bindDeadline): it detaches the callback but does not wait for
// one that has started.
func naiveBinder(ctx context.Context, c Deadliner) func() {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	unhook := context.AfterFunc(ctx, func() { _ = c.SetDeadline(aLongTimeAgo) })
	return func() {
		unhook()
		_ = c.SetDeadline(time.Time{})
	}
}

// cancelAtCompletion cancels ctx so that its callback has started, and is
// held inside SetDeadline, when the stage completes and stops the binding.
// It returns the deadline the connection is left with once every goroutine
// is done.
func cancelAtCompletion(t *testing.T, bind binder) time.Time {
	var left time.Time
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{gate: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		stop := bind(ctx, r)
		cancel()
		synctest.Wait() // the callback is running, blocked in SetDeadline
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		synctest.Wait() // the stage has completed: stop is waiting or done
		close(r.gate)
		<-stopped
		synctest.Wait() // every callback has finished
		left = r.deadline()
	})
	return left
}

// TestStopWaitsForStartedCallback is the bug of issue 11 item 1: a stage
// that completes at the instant its context is cancelled must hand on a
// connection with no deadline. The same scenario run on the former
// pattern leaves a deadline in 1970; the test shows that too, so it can
// fail.
func TestStopWaitsForStartedCallback(t *testing.T) {
	if d := cancelAtCompletion(t, ctxconnBinder); !d.IsZero() {
		t.Fatalf("after Stop the deadline is %v, want none", d)
	}
	if d := cancelAtCompletion(t, naiveBinder); d.IsZero() {
		t.Fatal("the scenario did not catch the naive binding: the test cannot fail")
	}
}

// TestCancelRacesCompletion runs the same race without a gate, many times,
// for the race detector and for orderings the gated test does not force.
func TestCancelRacesCompletion(t *testing.T) {
	for i := range 2000 {
		r := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		b := Bind(ctx, r)
		var wg sync.WaitGroup
		wg.Go(cancel)
		b.Stop()
		wg.Wait()
		// A callback that started has finished by the time Stop returned;
		// one that had not started never will (Stop detached it).
		if d := r.deadline(); !d.IsZero() {
			t.Fatalf("iteration %d: deadline left at %v after Stop", i, d)
		}
	}
}

func TestRestoresCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		prev := time.Now().Add(time.Hour)
		_ = r.SetDeadline(prev)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := BindRestoring(ctx, r, prev)
		if r.sets != 1 {
			t.Fatalf("Bind set a deadline (%v) before ctx ended; ctx's end is the only one it sets", r.deadline())
		}
		if b.Stop() {
			t.Fatal("Stop reports ctx ended; it had not")
		}
		if r.sets != 1 {
			t.Fatal("Stop of a Binding that moved nothing set a deadline")
		}

		b = BindRestoring(ctx, r, prev)
		b.SetDeadline(time.Now().Add(time.Second))
		b.Stop()
		if got := r.deadline(); !got.Equal(prev) {
			t.Fatalf("after a re-arm and Stop deadline %v, want the caller's %v", got, prev)
		}

		cctx, ccancel := context.WithCancel(context.Background())
		b = BindRestoring(cctx, r, prev)
		ccancel()
		synctest.Wait()
		if !b.Stop() {
			t.Fatal("Stop reports ctx did not end")
		}
		if got := r.deadline(); !got.Equal(prev) {
			t.Fatalf("after a cancel and Stop deadline %v, want the caller's %v", got, prev)
		}
	})
}

// TestDeadlineEndsThroughContext: ctx's deadline reaches the connection
// only as ctx's end, so the stage reports ctx's cause, never a bare I/O
// timeout from a timer of the connection's own.
func TestDeadlineEndsThroughContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, c := net.Pipe()
		defer a.Close()
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b := Bind(ctx, a)
		_, err := a.Read(make([]byte, 1))
		if err = b.Release(err); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Release = %v, want context.DeadlineExceeded", err)
		}
		if ctx.Err() == nil {
			t.Fatal("the read ended before ctx did")
		}
	})
}

func TestAlreadyEndedContext(t *testing.T) {
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := Bind(ctx, r)
	if d := r.deadline(); d.IsZero() || !d.Before(time.Now()) {
		t.Fatalf("deadline %v after Bind on an ended ctx, want one in the past", d)
	}
	if !b.Ended() {
		t.Fatal("Ended is false for a ctx that had ended")
	}
	if !b.Stop() {
		t.Fatal("Stop reports ctx did not end")
	}
}

func TestSetDeadlineCannotUndoCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		b := Bind(ctx, r)
		if b.SetDeadline(time.Now().Add(time.Second)) {
			t.Fatal("SetDeadline reports ended before cancel")
		}
		cancel()
		synctest.Wait()
		if !b.SetDeadline(time.Now().Add(time.Second)) {
			t.Fatal("SetDeadline after cancel does not report ended")
		}
		if d := r.deadline(); !d.Before(time.Unix(2, 0)) {
			t.Fatalf("deadline %v after a re-arm following cancel, want the past one", d)
		}
		b.Stop()
	})
}

// TestUnblocksPipe checks the real thing: a Read blocked on a net.Pipe
// returns when ctx is cancelled, Release maps the error to the cause, and
// the pipe is usable again after Release.
func TestUnblocksPipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, c := net.Pipe()
		defer a.Close()
		defer c.Close()
		cause := errors.New("caller gave up")
		ctx, cancel := context.WithCancelCause(context.Background())
		b := Bind(ctx, a)
		go func() {
			time.Sleep(time.Second) // fake clock
			cancel(cause)
		}()
		_, err := a.Read(make([]byte, 1))
		err = b.Release(err)
		if !errors.Is(err, cause) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Release = %v, want both the cause and the deadline error", err)
		}
		go func() { _, _ = c.Write([]byte{7}) }()
		if _, err := a.Read(make([]byte, 1)); err != nil {
			t.Fatalf("read after Release: %v", err)
		}
	})
}

func TestReleaseMapsOwnDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, c := net.Pipe()
		defer a.Close()
		defer c.Close()
		ctx, cancel := context.WithTimeoutCause(context.Background(), time.Second, errTimeout)
		defer cancel()
		b := Bind(ctx, a)
		_, err := a.Read(make([]byte, 1))
		if err = b.Release(err); !errors.Is(err, errTimeout) {
			t.Fatalf("Release = %v, want the deadline's cause", err)
		}
		if b.Release(nil) != nil {
			t.Fatal("Release(nil) is not nil")
		}
	})
}

var errTimeout = errors.New("stage timed out")

func TestReleaseKeepsOtherErrors(t *testing.T) {
	r := &recorder{}
	b := Bind(context.Background(), r)
	other := errors.New("peer spoke nonsense")
	if err := b.Release(other); err != other {
		t.Fatalf("Release = %v, want %v unchanged", err, other)
	}
}
