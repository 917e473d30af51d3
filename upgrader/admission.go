package upgrader

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// admission bounds the inbound upgrades in flight: overall, per source IP
// and per source subnet (/24 for IPv4, /64 for IPv6). It never queues.
//
// No limit starves newcomers: when one is full, a newcomer displaces the
// unauthenticated upgrade that has made the least progress (earliest
// stage, then fewest bytes received, then oldest) among those the limit
// counts: the same address for the per-IP limit, the same subnet for the
// per-subnet one, all of them for the overall one. So a pool full of
// silent or trickling sockets still admits an honest peer, whose handshake
// advances past theirs at once, even one behind the attacker's address or
// in its subnet; and one source still holds at most its share. An upgrade
// whose security handshake has authenticated the peer is never displaced;
// when every slot a limit counts holds one, the newcomer is refused.
//
// What an attacker with K sockets on M addresses can do: hold at most
// min(K, M × MaxInboundUpgradesPerIP, subnets × MaxInboundUpgradesPerSubnet)
// slots, and only for as long as no newcomer needs one: each new
// connection evicts the least-advanced of them. To keep an honest peer out
// it must keep every slot ahead of the honest handshake in stage, which
// means completing the simopen stage on each, faster than the honest peer
// does.
//
// All fields below mu are guarded by it; the counters are atomic so that
// Stats never takes the lock on a hot path's behalf.
type admission struct {
	maxInFlight  int
	maxPerIP     int
	maxPerSubnet int

	mu       sync.Mutex
	slots    map[*slot]struct{}
	perIP    map[netip.Addr]int
	perSub   map[netip.Prefix]int
	nextSeq  uint64
	inFlight int

	refusedGlobal atomic.Uint64
	refusedPerIP  atomic.Uint64
	refusedSubnet atomic.Uint64
	evicted       atomic.Uint64
	peak          atomic.Int64
}

func newAdmission(maxInFlight, maxPerIP, maxPerSubnet int) *admission {
	return &admission{
		maxInFlight: maxInFlight, maxPerIP: maxPerIP, maxPerSubnet: maxPerSubnet,
		slots: make(map[*slot]struct{}), perIP: make(map[netip.Addr]int), perSub: make(map[netip.Prefix]int),
	}
}

// refusal says which limit refused a connection.
type refusal uint8

const (
	admitted refusal = iota
	overGlobal
	overPerIP
	overPerSubnet
)

// Progress of an upgrade in a slot, in the order eviction respects.
const (
	progressNone          int32 = iota // nothing received yet
	progressSimopen                    // bytes received, election or selection running
	progressSecurity                   // the security handshake running
	progressAuthenticated              // the peer is authenticated: never evicted
)

// slot is one upgrade's place in the pool.
type slot struct {
	a      *admission
	ip     netip.Addr
	subnet netip.Prefix
	seq    uint64 // admission order: lower is older
	evict  func() // ends the upgrade; called at most once, without a.mu held

	stage atomic.Int32 // a progress* value
	bytes atomic.Int64 // bytes received from the peer

	gone bool // released or evicted; guarded by a.mu
}

// advance records that the upgrade reached stage p (never backwards).
func (s *slot) advance(p int32) {
	for {
		cur := s.stage.Load()
		if cur >= p || s.stage.CompareAndSwap(cur, p) {
			return
		}
	}
}

// received records n bytes from the peer.
func (s *slot) received(n int) {
	if s.bytes.Add(int64(n)) == int64(n) {
		s.advance(progressSimopen)
	}
}

// release frees the slot; it is idempotent, and a no-op after eviction.
func (s *slot) release() {
	s.a.mu.Lock()
	s.a.dropLocked(s)
	s.a.mu.Unlock()
}

// subnetOf is the subnet an address counts against.
func subnetOf(ip netip.Addr) netip.Prefix {
	bits := 64
	if ip.Is4() {
		bits = 24
	}
	p, err := ip.Prefix(bits)
	if err != nil { // the zero Addr (not an IP): one bucket
		return netip.Prefix{}
	}
	return p
}

// acquire takes a slot for ip. When a limit is full it evicts the
// least-advanced unauthenticated upgrade that limit counts, the narrowest
// full limit first; one eviction is enough, since the victim counts against
// every wider limit too. evict is how the new slot's own upgrade is ended
// should it be displaced later.
func (a *admission) acquire(ip netip.Addr, evict func()) (*slot, refusal) {
	ip = ip.Unmap()
	sub := subnetOf(ip)
	a.mu.Lock()
	var (
		in      func(*slot) bool // the slots the full limit counts
		why     refusal
		refused *atomic.Uint64
	)
	switch {
	case a.perIP[ip] >= a.maxPerIP:
		in, why, refused = func(x *slot) bool { return x.ip == ip }, overPerIP, &a.refusedPerIP
	case a.perSub[sub] >= a.maxPerSubnet:
		in, why, refused = func(x *slot) bool { return x.subnet == sub }, overPerSubnet, &a.refusedSubnet
	case a.inFlight >= a.maxInFlight:
		in, why, refused = func(*slot) bool { return true }, overGlobal, &a.refusedGlobal
	}
	var victim *slot
	if in != nil {
		if victim = a.victimLocked(in); victim == nil {
			a.mu.Unlock()
			refused.Add(1)
			return nil, why
		}
		a.dropLocked(victim)
		a.evicted.Add(1)
	}
	a.nextSeq++
	s := &slot{a: a, ip: ip, subnet: sub, seq: a.nextSeq, evict: evict}
	a.slots[s] = struct{}{}
	a.inFlight++
	a.perIP[ip]++
	a.perSub[sub]++
	if n := int64(a.inFlight); n > a.peak.Load() {
		a.peak.Store(n) // under mu, so no lost update
	}
	a.mu.Unlock()
	if victim != nil && victim.evict != nil {
		victim.evict()
	}
	return s, admitted
}

// victimLocked is the unauthenticated slot for which in is true with the
// least progress: the earliest stage, then the fewest bytes, then the
// oldest; nil if there is none.
func (a *admission) victimLocked(in func(*slot) bool) *slot {
	var v *slot
	var vStage int32
	var vBytes int64
	for s := range a.slots {
		st, b := s.stage.Load(), s.bytes.Load()
		if st >= progressAuthenticated || !in(s) {
			continue
		}
		if v == nil || st < vStage || st == vStage && (b < vBytes || b == vBytes && s.seq < v.seq) {
			v, vStage, vBytes = s, st, b
		}
	}
	return v
}

func (a *admission) dropLocked(s *slot) {
	if s.gone {
		return
	}
	s.gone = true
	delete(a.slots, s)
	a.inFlight--
	if a.perIP[s.ip]--; a.perIP[s.ip] <= 0 {
		delete(a.perIP, s.ip)
	}
	if a.perSub[s.subnet]--; a.perSub[s.subnet] <= 0 {
		delete(a.perSub, s.subnet)
	}
}

// inFlightNow is the number of slots held.
func (a *admission) inFlightNow() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

// watchedConn is an inbound raw connection whose reads feed its slot's
// progress, and whose first byte stops the first-byte timer.
type watchedConn struct {
	net.Conn
	s         *slot
	firstByte func() // called once, at the first byte; may be nil
	once      sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.s.received(n)
		if c.firstByte != nil {
			c.once.Do(c.firstByte)
		}
	}
	return n, err
}
