package host

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/concordp2p/concord/upgrader"
)

// resetOnRead is a dialed connection whose peer's kernel aborted it, as
// on an accept queue overflow with tcp_abort_on_overflow: writes succeed,
// the first read fails with ECONNRESET.
type resetOnRead struct{ net.Conn }

func (resetOnRead) Read([]byte) (int, error) {
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
}
func (resetOnRead) Write(p []byte) (int, error) { return len(p), nil }

// resettingDial fails the first n dials with a reset connection and sends
// the rest to ok. It records when each dial happened.
func resettingDial(n int32, ok func(ctx context.Context, a ma.Multiaddr) (net.Conn, error), at *[]time.Time) func(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
	var dials atomic.Int32
	return func(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
		*at = append(*at, time.Now())
		if dials.Add(1) <= n {
			x, _ := simopentest.Pipe(0)
			return resetOnRead{x}, nil
		}
		return ok(ctx, a)
	}
}

// TestResetBeforeSecurityRedials: with ResetRetries 2, two dials reset by
// the peer during the election are redialed after the jittered delays (half of 100 ms, then
// half of 200 ms with halfJitter), and the third connects.
func TestResetBeforeSecurityRedials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memHost(t, Config{}, nil)
		var at []time.Time
		a := memHost(t, Config{ResetRetries: 2}, resettingDial(2, pipeTo(b, nil), &at))
		start := time.Now()
		ai := b.AddrInfo()
		ai.Addrs = []ma.Multiaddr{fakeAddr}
		if _, err := a.Connect(context.Background(), ai); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if len(at) != 3 {
			t.Fatalf("%d dials, want 3", len(at))
		}
		want := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond}
		for i, w := range want {
			if got := at[i].Sub(start); got != w {
				t.Errorf("dial %d at +%v, want +%v", i+1, got, w)
			}
		}
		if bo := a.Backoff(b.ID()); len(bo) != 0 {
			t.Errorf("backoff after success = %+v", bo)
		}
	})
}

// TestResetRetriesBounded: a peer that resets every connection gets
// 1 + ResetRetries dials, then Connect fails with the reset, a stage-one
// *upgrader.Error, and the address backs off. ResetRetries < 0 dials once.
func TestResetRetriesBounded(t *testing.T) {
	for _, tc := range []struct {
		retries int
		dials   int
	}{{0, 1 + DefaultResetRetries}, {1, 2}, {-1, 1}} {
		synctest.Test(t, func(t *testing.T) {
			var at []time.Time
			never := func(context.Context, ma.Multiaddr) (net.Conn, error) { panic("not reached") }
			a := memHost(t, Config{ResetRetries: tc.retries}, resettingDial(100, never, &at))
			b := memHost(t, Config{}, nil)
			ai := b.AddrInfo()
			ai.Addrs = []ma.Multiaddr{fakeAddr}
			_, err := a.Connect(context.Background(), ai)
			var ue *upgrader.Error
			if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &ue) || ue.Stage != upgrader.StageSimopen {
				t.Fatalf("ResetRetries %d: Connect = %v, want a simopen-stage ECONNRESET", tc.retries, err)
			}
			if len(at) != tc.dials {
				t.Errorf("ResetRetries %d: %d dials, want %d", tc.retries, len(at), tc.dials)
			}
			if bo := a.Backoff(b.ID()); len(bo) != 1 {
				t.Errorf("ResetRetries %d: backoff %+v, want the address", tc.retries, bo)
			}
		})
	}
}

// TestResetAfterSecurityNotRedialed: a connection that fails once the
// security handshake has begun is not redialed: its handshake may have
// reached the peer's application layer.
func TestResetAfterSecurityNotRedialed(t *testing.T) {
	err := &upgrader.Error{Stage: upgrader.StageSecurity, Err: io.EOF}
	if resetBeforeSecurity(err) {
		t.Fatal("a security-stage EOF counts as a reset before security")
	}
	if !resetBeforeSecurity(&upgrader.Error{Stage: upgrader.StageSimopen, Err: io.ErrUnexpectedEOF}) {
		t.Fatal("a simopen-stage unexpected EOF does not count")
	}
}
