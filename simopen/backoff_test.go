package simopen

import (
	"math/rand/v2"
	"testing"
	"time"
)

// maxRand returns n-1, the largest draw, so Delay returns its bound minus 1ns.
type maxRand struct{ calls []int64 }

func (m *maxRand) Int64N(n int64) int64 { m.calls = append(m.calls, n); return n - 1 }

func TestBackoffBounds(t *testing.T) {
	r := &maxRand{}
	b := Backoff{Base: 100 * time.Millisecond, Cap: time.Second, Rand: r}
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		if got := b.Delay(n); got != want-1 {
			t.Errorf("Delay(%d) = %v, want %v (the bound minus the draw's 1ns)", n, got, want-1)
		}
	}
	if got := b.Delay(1 << 30); got != time.Second-1 {
		t.Errorf("Delay(2^30) = %v, want the cap", got)
	}
	if got := b.Delay(-3); got != 100*time.Millisecond-1 {
		t.Errorf("Delay(-3) = %v, want the base bound", got)
	}
	huge := Backoff{Base: time.Second, Cap: time.Duration(1<<63 - 1), Rand: r}
	if got := huge.Delay(200); got <= 0 {
		t.Errorf("Delay with a huge cap = %v, want positive (no overflow)", got)
	}
}

func TestBackoffDefaults(t *testing.T) {
	r := &maxRand{}
	var b Backoff
	b.Rand = r
	if got := b.Delay(0); got != DefaultBackoffBase-1 {
		t.Errorf("zero Backoff Delay(0) = %v, want %v", got, DefaultBackoffBase-1)
	}
	if got := b.Delay(100); got != DefaultBackoffCap-1 {
		t.Errorf("zero Backoff Delay(100) = %v, want %v", got, DefaultBackoffCap-1)
	}
}

// TestBackoffFullJitter: delays spread over the whole of [0, bound), so two
// peers that failed together rarely retry together.
func TestBackoffFullJitter(t *testing.T) {
	b := Backoff{Base: time.Second, Cap: time.Second, Rand: rand.New(rand.NewPCG(1, 2))}
	var low, high int
	for i := 0; i < 1000; i++ {
		d := b.Delay(0)
		if d < 0 || d >= time.Second {
			t.Fatalf("Delay = %v, outside [0, 1s)", d)
		}
		if d < 250*time.Millisecond {
			low++
		}
		if d >= 750*time.Millisecond {
			high++
		}
	}
	if low < 150 || high < 150 {
		t.Errorf("%d draws in the lowest quarter, %d in the highest, want ≥ 150 each of 1000", low, high)
	}
	if got := (Backoff{}).Delay(0); got < 0 || got >= DefaultBackoffBase {
		t.Errorf("Delay with the global generator = %v, outside [0, %v)", got, DefaultBackoffBase)
	}
}
