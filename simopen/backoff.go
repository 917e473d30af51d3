package simopen

import (
	"math/rand/v2"
	"time"
)

// Default backoff bounds for retrying a dial that failed the simopen stage
// (ErrSimopenTie, or a simultaneous open against a peer without the
// extension). The base is a few round trips, so that two peers retrying at
// once are unlikely to collide again; the cap keeps a retry prompt.
const (
	DefaultBackoffBase = 100 * time.Millisecond
	DefaultBackoffCap  = 10 * time.Second
)

// Backoff computes retry delays with exponential growth and full jitter:
// the delay before retry n (n = 0 for the first retry) is drawn uniformly
// from [0, min(Cap, Base·2^n)). Full jitter spreads two peers that failed
// together, which is the point: a second simultaneous open needs both to
// dial again within one round trip. The zero value uses the defaults. It
// is safe for concurrent use if Rand is.
type Backoff struct {
	// Base is the bound of the first delay. Default DefaultBackoffBase.
	Base time.Duration
	// Cap bounds every delay. Default DefaultBackoffCap.
	Cap time.Duration
	// Rand draws the jitter: Int64N(n) must return a uniform value in
	// [0, n). Default math/rand/v2's global generator; a *rand.Rand with a
	// fixed seed makes delays reproducible.
	Rand interface{ Int64N(n int64) int64 }
}

// Delay returns the delay before retry n (n < 0 counts as 0).
func (b Backoff) Delay(n int) time.Duration {
	base, limit := b.Base, b.Cap
	if base <= 0 {
		base = DefaultBackoffBase
	}
	if limit <= 0 {
		limit = DefaultBackoffCap
	}
	bound := base
	for i := 0; i < n && bound > 0 && bound < limit; i++ {
		bound *= 2 // may overflow to ≤ 0 for a huge Cap: caught below
	}
	if bound > limit || bound <= 0 {
		bound = limit
	}
	if b.Rand != nil {
		return time.Duration(b.Rand.Int64N(int64(bound)))
	}
	return time.Duration(rand.Int64N(int64(bound)))
}
