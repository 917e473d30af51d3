package upgrader

import (
	"net/netip"
	"sync"
	"sync/atomic"
)

// admission bounds the inbound upgrades in flight, overall and per source
// IP. It never queues: acquire either grants a slot at once or refuses.
//
// All fields below mu are guarded by it; the counters are atomic so that
// Stats never takes the lock on a hot path's behalf.
type admission struct {
	maxInFlight int
	maxPerIP    int

	mu       sync.Mutex
	inFlight int
	perIP    map[netip.Addr]int

	refusedGlobal atomic.Uint64
	refusedPerIP  atomic.Uint64
	peak          atomic.Int64
}

func newAdmission(maxInFlight, maxPerIP int) *admission {
	return &admission{maxInFlight: maxInFlight, maxPerIP: maxPerIP, perIP: make(map[netip.Addr]int)}
}

// refusal says which limit refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	overGlobal
	overPerIP
)

// acquire takes a slot for ip. On success it returns a release function that
// must be called exactly once (it is idempotent, to make that easy).
func (a *admission) acquire(ip netip.Addr) (release func(), why refusal) {
	ip = ip.Unmap()
	a.mu.Lock()
	switch {
	case a.inFlight >= a.maxInFlight:
		a.mu.Unlock()
		a.refusedGlobal.Add(1)
		return nil, overGlobal
	case a.perIP[ip] >= a.maxPerIP:
		a.mu.Unlock()
		a.refusedPerIP.Add(1)
		return nil, overPerIP
	}
	a.inFlight++
	a.perIP[ip]++
	if n := int64(a.inFlight); n > a.peak.Load() {
		a.peak.Store(n) // under mu, so no lost update
	}
	a.mu.Unlock()

	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.inFlight--
			if a.perIP[ip]--; a.perIP[ip] <= 0 {
				delete(a.perIP, ip)
			}
			a.mu.Unlock()
		})
	}, admitted
}

// inFlightNow is the number of slots held.
func (a *admission) inFlightNow() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}
