package concordlibp2p

import (
	"context"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
)

// blackholeDetection connects a to b (a plain dial, a in its namespace),
// blackholes b, and returns how long a's connection took to close by
// itself, or max when it had not closed by then.
func blackholeDetection(t *testing.T, concord bool, port int, max time.Duration) time.Duration {
	t.Helper()
	p := netlab.NewPair(t)
	a, b := newSide(t, p.A, concord, port), newSide(t, p.B, concord, port)
	b.accepting.Store(true)
	var err error
	var dc dialResult
	err = a.host.Do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dc.c, dc.err = a.tr.Dial(ctx, b.addr(port), b.id)
		return dc.err
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer dc.c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := b.host.Blackhole(ctx); err != nil {
		t.Fatalf("blackhole: %v", err)
	}
	start := time.Now()
	if c, ok := dc.c.(*conn); ok {
		select {
		case <-c.uc.Done():
			return time.Since(start)
		case <-time.After(max):
			return max
		}
	}
	// go-libp2p's connection has no channel to wait on.
	for !dc.c.IsClosed() {
		if time.Since(start) > max {
			return max
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start)
}

// TestBlackholeDetected: a peer that vanishes (every packet to and from it
// dropped, no RST, no ICMP) is detected and its connection closed by the
// Concord transport within its keepalive bound: yamux pings every 10 s and
// gives up 10 s after an unanswered one, so at most 20 s (plus
// scheduling). go-libp2p's stock TCP transport is measured alongside,
// polled every 100 ms (its connection has no channel to wait on), capped
// at 60 s, and only logged.
func TestBlackholeDetected(t *testing.T) {
	t.Run("concord", func(t *testing.T) {
		t.Parallel()
		d := blackholeDetection(t, true, 47000, 30*time.Second)
		t.Logf("Concord transport: blackholed peer's connection closed after %v", d.Round(100*time.Millisecond))
		if d > 21*time.Second { // 20 s, plus scheduling
			t.Errorf("closed after %v, want within 20 s", d)
		}
	})
	t.Run("stock", func(t *testing.T) {
		t.Parallel()
		d := blackholeDetection(t, false, 47001, 60*time.Second)
		t.Logf("stock go-libp2p v0.52.0 TCP: blackholed peer's connection closed after %v (a value of 60s means not closed by then)", d.Round(100*time.Millisecond))
	})
}
