package upgrader

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// newTestAdmission has room for probation larger than any test fills
// unless it sets the probation limits itself.
func newTestAdmission(inFlight, perIP, perSubnet int) *admission {
	return newAdmission(inFlight, perIP, perSubnet, 64, 64)
}

// ends records which slots' upgrades were ended, and with what.
type ends map[string]error

func (e ends) take(t *testing.T, a *admission, name, ip string, want refusal) *slot {
	t.Helper()
	s, why := a.acquire(netip.MustParseAddr(ip), func(err error) { e[name] = err })
	if why != want {
		t.Fatalf("%s from %s: got %d, want %d", name, ip, why, want)
	}
	return s
}

func TestAdmissionLimits(t *testing.T) {
	a := newTestAdmission(3, 2, 8)
	e := ends{}
	s1 := e.take(t, a, "s1", "10.0.0.1", admitted)
	s2 := e.take(t, a, "s2", "10.0.0.1", admitted)
	// Both of the address's upgrades authenticated: its limit can displace
	// none. The newcomer waits on probation, then is refused at its first
	// bytes.
	s1.advance(progressAuthenticated)
	s2.advance(progressAuthenticated)
	third := e.take(t, a, "third", "10.0.0.1", onProbation)
	if err := third.received(100); !errors.Is(err, ErrAdmissionRefused) {
		t.Fatalf("third from one address, at its first bytes: %v, want ErrAdmissionRefused", err)
	}
	if !errors.Is(e["third"], ErrAdmissionRefused) {
		t.Fatalf("the refused upgrade was ended with %v", e["third"])
	}
	// An IPv4-mapped IPv6 address is the same source.
	if s := e.take(t, a, "mapped", "::ffff:10.0.0.1", onProbation); s.received(1) == nil {
		t.Fatal("mapped address admitted past its address's limit")
	}
	s3 := e.take(t, a, "s3", "10.0.1.2", admitted)
	// Full, and every upgrade authenticated: nothing may be displaced.
	s3.advance(progressAuthenticated)
	if s := e.take(t, a, "fourth", "10.0.2.3", onProbation); s.received(1) == nil {
		t.Fatal("admitted over the global limit with every upgrade authenticated")
	}
	if got := a.refusedPerIP.Load(); got != 2 {
		t.Errorf("refusedPerIP = %d, want 2", got)
	}
	if got := a.refusedGlobal.Load(); got != 1 {
		t.Errorf("refusedGlobal = %d, want 1", got)
	}
	if got := a.onProbationNow(); got != 0 {
		t.Errorf("%d on probation after every newcomer was refused, want 0", got)
	}
	s1.finish(true)
	s1.finish(true) // idempotent: must not free twice
	if got := a.inFlightNow(); got != 2 {
		t.Fatalf("inFlight after one finish (called twice) = %d, want 2", got)
	}
	e.take(t, a, "after", "10.0.0.1", admitted)
	s2.finish(true)
	s3.finish(true)
	if got := a.peak.Load(); got != 3 {
		t.Errorf("peak = %d, want 3", got)
	}
}

// TestAdmissionSilentNewcomerDisplacesNoOne is the trickle flood: every
// pool slot has received a byte or two. A newcomer displaces no one until
// its first bytes arrive, and then only a slot that has fewer; one that
// brings no more than the least-advanced is refused.
func TestAdmissionSilentNewcomerDisplacesNoOne(t *testing.T) {
	a := newTestAdmission(3, 3, 3)
	e := ends{}
	for i, n := range []int{2, 1, 3} {
		s := e.take(t, a, fmt.Sprintf("trickle %d", n), fmt.Sprintf("10.%d.0.1", i), admitted)
		s.received(n)
	}
	honest := e.take(t, a, "honest", "10.9.0.1", onProbation)
	for i := range 5 {
		e.take(t, a, "silent", fmt.Sprintf("10.%d.0.1", 20+i), onProbation)
	}
	if len(e) != 0 {
		t.Fatalf("newcomers that sent nothing ended %v", e)
	}
	late := e.take(t, a, "trickler", "10.30.0.1", onProbation)
	if err := late.received(1); err == nil {
		t.Fatal("a newcomer with 1 byte displaced a slot with 1 byte")
	}
	if err := honest.received(48); err != nil {
		t.Fatalf("honest first flight refused: %v", err)
	}
	if !errors.Is(e["trickle 1"], ErrEvicted) || len(e) != 2 {
		t.Fatalf("ended %v, want the 1-byte trickle evicted and the late trickler refused", e)
	}
	if got := a.inFlightNow(); got != 3 {
		t.Fatalf("in flight %d, want the limit 3", got)
	}
}

// TestAdmissionPerSourceEvictsWithinSource: a full per-IP or per-subnet
// limit displaces the least-advanced upgrade of that same source, never
// another source's, so an honest peer behind an attacker's address or in
// its subnet still gets a slot while the source keeps at most its share.
func TestAdmissionPerSourceEvictsWithinSource(t *testing.T) {
	a := newTestAdmission(100, 2, 3)
	e := ends{}
	e.take(t, a, "other subnet", "198.51.100.1", admitted)
	e.take(t, a, "silent", "192.0.2.1", admitted)
	moving := e.take(t, a, "moving", "192.0.2.1", admitted)
	moving.received(40)
	if err := e.take(t, a, "honest behind the same address", "192.0.2.1", onProbation).received(48); err != nil {
		t.Fatal(err)
	}
	if e["silent"] == nil || e["moving"] != nil || e["other subnet"] != nil {
		t.Fatalf("ended %v, want only the silent upgrade of the full address", e)
	}
	e.take(t, a, "neighbour", "192.0.2.7", admitted) // the /24 now holds 3: full
	if err := e.take(t, a, "second neighbour", "192.0.2.8", onProbation).received(60); err != nil {
		t.Fatal(err)
	}
	if len(e) != 2 || e["other subnet"] != nil {
		t.Fatalf("ended %v, want one more upgrade from the full /24 and none from elsewhere", e)
	}
	if n := a.perSub[subnetOf(netip.MustParseAddr("192.0.2.1"))]; n != 3 {
		t.Fatalf("the /24 holds %d upgrades, want its limit 3", n)
	}
	if got := a.refusedPerIP.Load() + a.refusedSubnet.Load(); got != 0 {
		t.Fatalf("%d refusals, want none while something could be evicted", got)
	}
}

func TestAdmissionPerSubnet(t *testing.T) {
	a := newTestAdmission(100, 100, 3)
	e := ends{}
	for _, prefix := range []string{"192.0.2.", "2001:db8::"} {
		for i := range 3 {
			e.take(t, a, "member", fmt.Sprint(prefix, i+1), admitted).advance(progressAuthenticated)
		}
		s := e.take(t, a, "4th", fmt.Sprint(prefix, 200), onProbation)
		if err := s.received(10); !errors.Is(err, ErrAdmissionRefused) {
			t.Fatalf("4th address of one subnet %s: %v, want refused", prefix, err)
		}
	}
	e.take(t, a, "next /24", "192.0.3.1", admitted)
	e.take(t, a, "next /64", "2001:db8:0:1::1", admitted)
	if got := a.refusedSubnet.Load(); got != 2 {
		t.Fatalf("refusedSubnet %d, want 2", got)
	}
}

// TestAdmissionEvictsLeastProgress: a claim displaces, in order, the slot
// that received nothing, then the one with fewer bytes, then the older of
// equals; a security-stage slot is ahead of every simopen-stage newcomer,
// and an authenticated one is never displaced.
func TestAdmissionEvictsLeastProgress(t *testing.T) {
	a := newTestAdmission(5, 5, 5)
	e := ends{}
	ip := func() string { return fmt.Sprintf("10.%d.0.1", a.nextSeq+1) }
	e.take(t, a, "authenticated", ip(), admitted).advance(progressAuthenticated)
	sec := e.take(t, a, "security", ip(), admitted)
	sec.received(500)
	sec.advance(progressSecurity)
	e.take(t, a, "nothing", ip(), admitted)
	e.take(t, a, "few bytes", ip(), admitted).received(3)
	e.take(t, a, "many bytes", ip(), admitted).received(30)

	for _, want := range []string{"nothing", "few bytes", "many bytes"} {
		s := e.take(t, a, "newcomer "+want, ip(), onProbation)
		if err := s.received(1000); err != nil {
			t.Fatalf("newcomer for %q: %v", want, err)
		}
		if !errors.Is(e[want], ErrEvicted) {
			t.Fatalf("a newcomer ended %v, want %q evicted", e, want)
		}
		s.advance(progressSecurity)
	}
	// Now: authenticated, and four in the security stage. A newcomer still
	// in simopen is behind all of them.
	if err := e.take(t, a, "late", ip(), onProbation).received(1000); !errors.Is(err, ErrAdmissionRefused) {
		t.Fatalf("a simopen-stage newcomer against security-stage slots: %v, want refused", err)
	}
	if e["authenticated"] != nil || e["security"] != nil {
		t.Fatalf("ended %v: an upgrade ahead of the newcomer was displaced", e)
	}
	if got := a.evicted.Load(); got != 3 {
		t.Fatalf("evicted counter %d, want 3", got)
	}
	if got := a.inFlightNow(); got != 5 {
		t.Fatalf("in flight %d, want the limit 5", got)
	}
}

// TestAdmissionProbationFavoursCleanSources: a full probation set loses
// the newcomer of the source that failed most, then the oldest; a newcomer
// whose source failed more than everyone there is refused; an address at
// its probation share replaces its own oldest.
func TestAdmissionProbationFavoursCleanSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newAdmission(1, 1, 1, 3, 2)
		e := ends{}
		e.take(t, a, "holder", "10.0.0.1", admitted)
		now := time.Now()
		a.mu.Lock()
		for range 5 {
			a.failLocked(netip.MustParseAddr("10.1.0.1"), now) // score 5
		}
		a.failLocked(netip.MustParseAddr("10.2.0.1"), now) // score 1
		a.mu.Unlock()

		e.take(t, a, "bad", "10.1.0.1", onProbation)
		e.take(t, a, "mild", "10.2.0.1", onProbation)
		e.take(t, a, "clean", "10.3.0.1", onProbation)
		e.take(t, a, "newcomer", "10.4.0.1", onProbation)
		if !errors.Is(e["bad"], ErrEvicted) || len(e) != 1 {
			t.Fatalf("ended %v, want the worst source's probation place taken", e)
		}
		if s, why := a.acquire(netip.MustParseAddr("10.1.0.1"), nil); s != nil || why != overProbation {
			t.Fatalf("the worst source, against cleaner ones on probation: %d, want overProbation", why)
		}
		e.take(t, a, "mild 2", "10.2.0.1", onProbation) // displaces mild (score 1, highest)
		e.take(t, a, "mild 3", "10.2.0.1", onProbation) // the address's share of 2: its own oldest goes
		if !errors.Is(e["mild"], ErrEvicted) || !errors.Is(e["mild 2"], ErrEvicted) || e["clean"] != nil || e["newcomer"] != nil {
			t.Fatalf("ended %v", e)
		}
		if got := a.dropped.Load(); got != 3 {
			t.Fatalf("dropped %d, want 3", got)
		}
		if got := a.onProbationNow(); got != 3 {
			t.Fatalf("on probation %d, want the limit 3", got)
		}
	})
}

// TestAdmissionFailingSourceCost: failures shrink a source's per-IP limit,
// halving it per costStep of score; the score halves every sourceHalfLife,
// and a success clears it.
func TestAdmissionFailingSourceCost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestAdmission(100, 16, 100)
		ip := netip.MustParseAddr("10.0.0.1")
		limit := func() int {
			a.mu.Lock()
			defer a.mu.Unlock()
			return a.perIPLimitLocked(ip, time.Now())
		}
		for range 2 * costStep {
			s, _ := a.acquire(ip, nil)
			s.finish(false)
		}
		if got := limit(); got != 4 {
			t.Fatalf("after %d failures the limit is %d, want 16/4", 2*costStep, got)
		}
		time.Sleep(sourceHalfLife)
		if got := limit(); got != 8 {
			t.Fatalf("one half-life later the limit is %d, want 8", got)
		}
		for range 100 {
			s, _ := a.acquire(ip, nil)
			s.finish(false)
		}
		if got := limit(); got != 1 {
			t.Fatalf("after many failures the limit is %d, want at least 1", got)
		}
		s, _ := a.acquire(ip, nil)
		s.finish(true)
		if got := limit(); got != 16 {
			t.Fatalf("after a success the limit is %d, want 16", got)
		}
	})
}

// TestAdmissionRemembersBoundedSources: a flood of failing addresses does
// not grow the score table past maxSources.
func TestAdmissionRemembersBoundedSources(t *testing.T) {
	a := newTestAdmission(100, 100, 100)
	for i := range 3 * maxSources {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		s, _ := a.acquire(ip, nil)
		s.finish(false)
	}
	if n := len(a.sources); n > maxSources {
		t.Fatalf("%d sources remembered, want at most %d", n, maxSources)
	}
}

func TestAdmissionConcurrent(t *testing.T) {
	const limit = 8
	a := newAdmission(limit, limit, limit, limit, limit)
	ip := netip.MustParseAddr("127.0.0.1")
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				s, why := a.acquire(ip, nil)
				if s == nil {
					continue
				}
				if why == onProbation {
					_ = s.received(1 + i%7)
				}
				if n := a.inFlightNow(); n > limit {
					t.Errorf("in flight %d > limit %d", n, limit)
				}
				s.finish(g%2 == 0)
			}
		}()
	}
	wg.Wait()
	if got := a.inFlightNow(); got != 0 {
		t.Fatalf("in flight after all finished = %d, want 0", got)
	}
	if got := a.peak.Load(); got > limit {
		t.Fatalf("peak %d > limit %d", got, limit)
	}
	if len(a.perIP) != 0 || len(a.perSub) != 0 || len(a.slots) != 0 || len(a.probation) != 0 || len(a.probIP) != 0 {
		t.Fatalf("maps not emptied: %v %v %d slots %d on probation", a.perIP, a.perSub, len(a.slots), len(a.probation))
	}
}
