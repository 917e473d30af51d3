package upgrader

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func TestAdmissionLimits(t *testing.T) {
	a := newAdmission(3, 2, 8)
	ip1 := netip.MustParseAddr("10.0.0.1")
	ip2 := netip.MustParseAddr("10.0.1.2")

	s1, why := a.acquire(ip1, nil)
	if why != admitted {
		t.Fatalf("first acquire: got refusal %d, want admitted", why)
	}
	s2, _ := a.acquire(ip1, nil)
	// Both of ip1's upgrades authenticated: its limit can displace none.
	s1.advance(progressAuthenticated)
	s2.advance(progressAuthenticated)
	if _, why := a.acquire(ip1, nil); why != overPerIP {
		t.Fatalf("third acquire from one IP: got %d, want overPerIP", why)
	}
	// An IPv4-mapped IPv6 address is the same source.
	if _, why := a.acquire(netip.MustParseAddr("::ffff:10.0.0.1"), nil); why != overPerIP {
		t.Fatalf("mapped address: got %d, want overPerIP", why)
	}
	s3, why := a.acquire(ip2, nil)
	if why != admitted {
		t.Fatalf("other IP: got %d, want admitted", why)
	}
	// Full, and every upgrade authenticated: nothing may be displaced.
	s3.advance(progressAuthenticated)
	if _, why := a.acquire(netip.MustParseAddr("10.0.2.3"), nil); why != overGlobal {
		t.Fatalf("over global limit with all authenticated: got %d, want overGlobal", why)
	}
	if got := a.refusedPerIP.Load(); got != 2 {
		t.Errorf("refusedPerIP = %d, want 2", got)
	}
	if got := a.refusedGlobal.Load(); got != 1 {
		t.Errorf("refusedGlobal = %d, want 1", got)
	}
	s1.release()
	s1.release() // idempotent: must not release twice
	if got := a.inFlightNow(); got != 2 {
		t.Fatalf("inFlight after one release (called twice) = %d, want 2", got)
	}
	if _, why := a.acquire(ip1, nil); why != admitted {
		t.Fatalf("after release: got %d, want admitted", why)
	}
	s2.release()
	s3.release()
	if got := a.peak.Load(); got != 3 {
		t.Errorf("peak = %d, want 3", got)
	}
}

// TestAdmissionPerSourceEvictsWithinSource: a full per-IP or per-subnet
// limit displaces the least-advanced upgrade of that same source, never
// another source's, so an honest peer behind an attacker's address or in
// its subnet still gets a slot while the source keeps at most its share.
func TestAdmissionPerSourceEvictsWithinSource(t *testing.T) {
	a := newAdmission(100, 2, 3)
	gone := map[string]bool{}
	take := func(name, ip string) *slot {
		s, why := a.acquire(netip.MustParseAddr(ip), func() { gone[name] = true })
		if why != admitted {
			t.Fatalf("%s: refusal %d, want admitted", name, why)
		}
		return s
	}
	take("other subnet", "198.51.100.1")
	take("silent", "192.0.2.1")
	moving := take("moving", "192.0.2.1")
	moving.received(40)
	take("honest behind the same address", "192.0.2.1")
	if !gone["silent"] || gone["moving"] || gone["other subnet"] {
		t.Fatalf("evicted %v, want only the silent upgrade of the full address", gone)
	}
	take("neighbour", "192.0.2.7") // the /24 now holds 3: full
	take("second neighbour", "192.0.2.8")
	if len(gone) != 2 || gone["other subnet"] {
		t.Fatalf("evicted %v, want one more upgrade from the full /24 and none from elsewhere", gone)
	}
	if n := a.perSub[subnetOf(netip.MustParseAddr("192.0.2.1"))]; n != 3 {
		t.Fatalf("the /24 holds %d upgrades, want its limit 3", n)
	}
	if got := a.refusedPerIP.Load() + a.refusedSubnet.Load(); got != 0 {
		t.Fatalf("%d refusals, want none while something could be evicted", got)
	}
}

func TestAdmissionPerSubnet(t *testing.T) {
	a := newAdmission(100, 100, 3)
	for i := range 3 {
		s, why := a.acquire(netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", i+1)), nil)
		if why != admitted {
			t.Fatalf("address %d of the /24: refusal %d, want admitted", i, why)
		}
		s.advance(progressAuthenticated) // nothing to evict: the limit refuses
	}
	if _, why := a.acquire(netip.MustParseAddr("192.0.2.200"), nil); why != overPerSubnet {
		t.Fatalf("4th address of one /24: got %d, want overPerSubnet", why)
	}
	if _, why := a.acquire(netip.MustParseAddr("192.0.3.1"), nil); why != admitted {
		t.Fatalf("next /24: got %d, want admitted", why)
	}
	for i := range 3 {
		s, why := a.acquire(netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1)), nil)
		if why != admitted {
			t.Fatalf("address %d of the /64: refusal %d, want admitted", i, why)
		}
		s.advance(progressAuthenticated)
	}
	if _, why := a.acquire(netip.MustParseAddr("2001:db8::ffff:1"), nil); why != overPerSubnet {
		t.Fatalf("4th address of one /64: got %d, want overPerSubnet", why)
	}
	if _, why := a.acquire(netip.MustParseAddr("2001:db8:0:1::1"), nil); why != admitted {
		t.Fatalf("next /64: got %d, want admitted", why)
	}
}

// TestAdmissionEvictsLeastProgress: a full pool displaces, in order, the
// slot that received nothing, then the one with fewer bytes, then the
// older of equals; a security-stage slot goes after every simopen-stage
// one, and an authenticated one never.
func TestAdmissionEvictsLeastProgress(t *testing.T) {
	a := newAdmission(4, 4, 4)
	evicted := map[string]bool{}
	take := func(name string) *slot {
		ip := netip.MustParseAddr(fmt.Sprintf("10.%d.0.1", len(evicted)+len(a.slots)+1))
		s, why := a.acquire(ip, func() { evicted[name] = true })
		if why != admitted {
			t.Fatalf("%s: refusal %d, want admitted", name, why)
		}
		return s
	}
	auth := take("authenticated")
	auth.advance(progressAuthenticated)
	sec := take("security")
	sec.received(500)
	sec.advance(progressSecurity)
	few := take("few bytes")
	few.received(3)
	many := take("many bytes")
	many.received(30)

	for _, want := range []string{"few bytes", "many bytes"} {
		s := take("newcomer " + want)
		if !evicted[want] {
			t.Fatalf("a newcomer evicted %v, want %q", evicted, want)
		}
		s.received(1000) // the newcomer's handshake advances past the rest
		s.advance(progressSecurity)
	}
	// Now: authenticated, security (500 bytes, oldest), two newcomers in
	// security with 1000 bytes. The oldest least-advanced goes.
	take("third newcomer")
	if !evicted["security"] {
		t.Fatalf("evicted %v, want the security-stage slot with the fewest bytes", evicted)
	}
	if evicted["authenticated"] {
		t.Fatal("an authenticated upgrade was evicted")
	}
	if got := a.evicted.Load(); got != 3 {
		t.Fatalf("evicted counter %d, want 3", got)
	}
	if got := a.inFlightNow(); got != 4 {
		t.Fatalf("in flight %d, want the limit 4", got)
	}
}

func TestAdmissionConcurrent(t *testing.T) {
	const limit = 8
	a := newAdmission(limit, limit, limit)
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if s, why := a.acquire(ip, nil); why == admitted {
					if n := a.inFlightNow(); n > limit {
						t.Errorf("in flight %d > limit %d", n, limit)
					}
					s.release()
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
	if len(a.perIP) != 0 || len(a.perSub) != 0 || len(a.slots) != 0 {
		t.Fatalf("maps not emptied: %v %v %d slots", a.perIP, a.perSub, len(a.slots))
	}
}
