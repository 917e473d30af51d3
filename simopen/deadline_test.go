package simopen

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/simopen/simopentest"
)

var noiseOnly = Config{Protocols: []string{"/noise"}}

// stage runs Dial or Accept with the given ctx on one end of a pipe whose
// other end is driven by peer, and returns the stage's error and how long
// it took on the fake clock.
func stage(t *testing.T, ctx context.Context, accept bool, peer func(net.Conn)) (time.Duration, error) {
	t.Helper()
	a, b := simopentest.Pipe(0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		peer(b)
	}()
	start := time.Now()
	var err error
	if accept {
		_, _, err = Accept(ctx, a, noiseOnly)
	} else {
		_, _, err = Dial(ctx, a, noiseOnly)
	}
	elapsed := time.Since(start)
	a.Close() // as the caller does on error; ends the peer's writes
	b.Close()
	<-done
	return elapsed, err
}

func silent(net.Conn) {}

// trickle sends a valid but endless stream of tokens, one byte every
// 100ms, until its writes fail.
func trickle(c net.Conn) {
	wire := encodeTokens(ProtocolHeader, ProtocolID, "/tls/1.0.0")
	for i := 0; i < 10000; i++ {
		if _, err := c.Write(wire[i%len(wire) : i%len(wire)+1]); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDeadlineCutsOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		accept bool
		peer   func(net.Conn)
	}{
		{"dial-silent", false, silent},
		{"dial-trickle", false, trickle},
		{"accept-silent", true, silent},
		{"accept-trickle", true, trickle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const limit = 3 * time.Second
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				defer cancel()
				elapsed, err := stage(t, ctx, tc.accept, tc.peer)
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err %v, want context.DeadlineExceeded", err)
				}
				if elapsed != limit {
					t.Errorf("stage ended after %v, want exactly %v", elapsed, limit)
				}
			})
		})
	}
}

func TestCancelUnblocks(t *testing.T) {
	for _, accept := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			cause := errors.New("host shutting down")
			ctx, cancel := context.WithCancelCause(context.Background())
			time.AfterFunc(time.Second, func() { cancel(cause) })
			elapsed, err := stage(t, ctx, accept, silent)
			if !errors.Is(err, cause) {
				t.Errorf("accept=%v: err %v, want the cancel cause", accept, err)
			}
			if elapsed != time.Second {
				t.Errorf("accept=%v: stage ended after %v, want 1s", accept, elapsed)
			}
		})
	}
}

func TestCancelledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, b := simopentest.Pipe(0)
	defer a.Close()
	defer b.Close()
	if _, _, err := Dial(ctx, a, noiseOnly); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	if a.Writes() != 0 {
		t.Errorf("%d writes on a cancelled dial, want 0", a.Writes())
	}
}

// TestDeadlineClearedOnSuccess: the stage's deadline must not leak into
// the security handshake that follows.
func TestDeadlineClearedOnSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		a, b := runPairCtx(t, ctx, dialer(noiseOnly), acceptor(noiseOnly), func() { time.Sleep(2 * time.Second) })
		if a.err != nil || b.err != nil || a.herr != nil || b.herr != nil {
			t.Fatalf("errors: a %v / %v, b %v / %v", a.err, a.herr, b.err, b.herr)
		}
	})
}
