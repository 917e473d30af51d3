package tcp

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// blackhole is a dialContext that never connects: it waits for its context,
// as a connect to a silent address does, and fails the way net does.
func blackhole(ctx context.Context, _ *net.Dialer, network, address string) (net.Conn, error) {
	<-ctx.Done()
	return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
}

// TestDialTimeout runs the timeout logic on a fake clock: the dial must end
// exactly when the earlier of the connect timeout and the ctx deadline
// passes, with an error that says which.
func TestDialTimeout(t *testing.T) {
	target := ma.StringCast("/ip4/192.0.2.1/tcp/4001")
	for _, tc := range []struct {
		name        string
		cfg         Config
		ctxTimeout  time.Duration // 0: none
		cancelAfter time.Duration // 0: never
		wantElapsed time.Duration
		wantTimeout bool
		wantIs      error
	}{
		{name: "default 5s", wantElapsed: 5 * time.Second, wantTimeout: true, wantIs: ErrDialTimeout},
		{name: "configured 2s", cfg: Config{ConnectTimeout: 2 * time.Second}, wantElapsed: 2 * time.Second, wantTimeout: true, wantIs: ErrDialTimeout},
		{name: "ctx deadline earlier", ctxTimeout: time.Second, wantElapsed: time.Second, wantTimeout: true, wantIs: context.DeadlineExceeded},
		{name: "connect timeout earlier", cfg: Config{ConnectTimeout: time.Second}, ctxTimeout: 3 * time.Second, wantElapsed: time.Second, wantTimeout: true, wantIs: ErrDialTimeout},
		{name: "cancel", cancelAfter: 1500 * time.Millisecond, wantElapsed: 1500 * time.Millisecond, wantIs: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := New(tc.cfg)
				tr.dialContext = blackhole
				ctx := context.Background()
				if tc.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
					defer cancel()
				}
				if tc.cancelAfter > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
					time.AfterFunc(tc.cancelAfter, cancel)
				}
				start := time.Now()
				_, err := tr.Dial(ctx, target)
				if got := time.Since(start); got != tc.wantElapsed {
					t.Errorf("Dial returned after %v, want %v", got, tc.wantElapsed)
				}
				var de *DialError
				if !errors.As(err, &de) || !de.Addr.Equal(target) {
					t.Fatalf("err = %v, want a *DialError naming %s", err, target)
				}
				if !errors.Is(err, tc.wantIs) {
					t.Errorf("err = %v, want it to wrap %v", err, tc.wantIs)
				}
				if de.Timeout() != tc.wantTimeout || errors.Is(err, ErrDialTimeout) != tc.wantTimeout {
					t.Errorf("Timeout() = %v, Is(ErrDialTimeout) = %v; want %v", de.Timeout(), errors.Is(err, ErrDialTimeout), tc.wantTimeout)
				}
			})
		})
	}
}

// TestDialCancelledBeforeStart: a dead context fails at once with its cause,
// without touching the network.
func TestDialCancelledBeforeStart(t *testing.T) {
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	tr := New(Config{})
	tr.dialContext = func(context.Context, *net.Dialer, string, string) (net.Conn, error) {
		t.Error("dialContext called with a dead context")
		return nil, errors.New("unexpected")
	}
	if _, err := tr.Dial(ctx, ma.StringCast("/ip4/192.0.2.1/tcp/1")); !errors.Is(err, cause) {
		t.Errorf("err = %v, want the context's cause", err)
	}
}

// TestFallbackSharesTheTimeout: the retry from an ephemeral port gets only
// what is left of the connect timeout, not a fresh one.
func TestFallbackSharesTheTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := New(Config{ConnectTimeout: 2 * time.Second})
		tr.listeners = []*Listener{{addr: &net.TCPAddr{IP: net.IPv4zero.To4(), Port: 4001}}}
		calls := 0
		tr.dialContext = func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
			calls++
			if calls == 1 {
				if d.LocalAddr == nil {
					t.Errorf("first attempt has no local address, want the listen port")
				}
				time.Sleep(500 * time.Millisecond)
				return nil, &net.OpError{Op: "dial", Err: syscall.EADDRNOTAVAIL}
			}
			if d.LocalAddr != nil {
				t.Errorf("retry binds %v, want an ephemeral port", d.LocalAddr)
			}
			return blackhole(ctx, d, network, address)
		}
		start := time.Now()
		_, err := tr.Dial(context.Background(), ma.StringCast("/ip4/192.0.2.1/tcp/4001"))
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("Dial took %v, want 2s in total", got)
		}
		if calls != 2 || !errors.Is(err, ErrDialTimeout) {
			t.Errorf("calls = %d, err = %v; want 2 attempts and ErrDialTimeout", calls, err)
		}
	})
}

// TestDialTimeoutBeforeContextNotices: the net package may report its own
// poller deadline (os.ErrDeadlineExceeded) a moment before the context's
// timer fires; that is still the connect timeout, not a kernel error.
func TestDialTimeoutBeforeContextNotices(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ctxTimeout time.Duration
		wantCtx    bool
	}{{"connect timeout", 0, false}, {"ctx deadline", time.Second, true}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := New(Config{ConnectTimeout: 2 * time.Second})
				ctx := context.Background()
				wait := 2 * time.Second
				if tc.ctxTimeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
					defer cancel()
					wait = tc.ctxTimeout
				}
				tr.dialContext = func(ctx context.Context, _ *net.Dialer, network, _ string) (net.Conn, error) {
					// Return at the deadline but before the context's
					// timer has run: it is scheduled for the same instant
					// and has not fired while this goroutine sleeps
					// 1ns less.
					time.Sleep(wait - time.Nanosecond)
					if ctx.Err() != nil {
						t.Errorf("context already done; the test does not exercise the race")
					}
					return nil, &net.OpError{Op: "dial", Net: network, Err: os.ErrDeadlineExceeded}
				}
				_, err := tr.Dial(ctx, ma.StringCast("/ip4/192.0.2.1/tcp/1"))
				if !errors.Is(err, ErrDialTimeout) {
					t.Errorf("err = %v, want ErrDialTimeout", err)
				}
				if got := errors.Is(err, context.DeadlineExceeded); got != tc.wantCtx {
					t.Errorf("Is(context.DeadlineExceeded) = %v, want %v (err %v)", got, tc.wantCtx, err)
				}
			})
		})
	}
}
