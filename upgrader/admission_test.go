package upgrader

import (
	"net/netip"
	"sync"
	"testing"
)

func TestAdmissionLimits(t *testing.T) {
	a := newAdmission(3, 2)
	ip1 := netip.MustParseAddr("10.0.0.1")
	ip2 := netip.MustParseAddr("10.0.0.2")

	r1, why := a.acquire(ip1)
	if why != admitted {
		t.Fatalf("first acquire: got refusal %d, want admitted", why)
	}
	r2, _ := a.acquire(ip1)
	if _, why := a.acquire(ip1); why != overPerIP {
		t.Fatalf("third acquire from one IP: got %d, want overPerIP", why)
	}
	// An IPv4-mapped IPv6 address is the same source.
	if _, why := a.acquire(netip.MustParseAddr("::ffff:10.0.0.1")); why != overPerIP {
		t.Fatalf("mapped address: got %d, want overPerIP", why)
	}
	r3, why := a.acquire(ip2)
	if why != admitted {
		t.Fatalf("other IP: got %d, want admitted", why)
	}
	if _, why := a.acquire(netip.MustParseAddr("10.0.0.3")); why != overGlobal {
		t.Fatalf("over global limit: got %d, want overGlobal", why)
	}
	if got := a.refusedPerIP.Load(); got != 2 {
		t.Errorf("refusedPerIP = %d, want 2", got)
	}
	if got := a.refusedGlobal.Load(); got != 1 {
		t.Errorf("refusedGlobal = %d, want 1", got)
	}
	r1()
	r1() // idempotent: must not release twice
	if got := a.inFlightNow(); got != 2 {
		t.Fatalf("inFlight after one release (called twice) = %d, want 2", got)
	}
	if _, why := a.acquire(ip1); why != admitted {
		t.Fatalf("after release: got %d, want admitted", why)
	}
	r2()
	r3()
	if got := a.peak.Load(); got != 3 {
		t.Errorf("peak = %d, want 3", got)
	}
}

func TestAdmissionConcurrent(t *testing.T) {
	const limit = 8
	a := newAdmission(limit, limit)
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if rel, why := a.acquire(ip); why == admitted {
					if n := a.inFlightNow(); n > limit {
						t.Errorf("in flight %d > limit %d", n, limit)
					}
					rel()
				}
			}
		}()
	}
	wg.Wait()
	if got := a.inFlightNow(); got != 0 {
		t.Fatalf("in flight after all released = %d, want 0", got)
	}
	if got := a.peak.Load(); got > limit {
		t.Fatalf("peak %d > limit %d", got, limit)
	}
	if len(a.perIP) != 0 {
		t.Fatalf("perIP map not emptied: %v", a.perIP)
	}
}
