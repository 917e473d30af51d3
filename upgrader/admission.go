package upgrader

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// admission bounds the inbound upgrades in flight: overall, per source IP
// and per source subnet (/24 for IPv4, /64 for IPv6). It never queues.
//
// A newcomer that finds a limit full is not refused and does not displace
// anyone yet: it goes on probation, a small bounded set of connections
// whose first bytes are awaited. When they arrive it claims a slot by
// displacing the unauthenticated upgrade that has made the least progress
// (earliest stage, then fewest bytes received, then oldest) among those the
// full limit counts: the same address for the per-IP limit, the same
// subnet for the per-subnet one, all of them for the overall one; it is
// refused if that upgrade has made as much progress as it has. So a pool
// full of silent or trickling sockets still admits an honest peer, whose
// first flight carries more than a trickle, even one behind the attacker's
// address or in its subnet; a newcomer that has sent nothing displaces no
// one; and one source still holds at most its share. An upgrade whose
// security handshake has authenticated the peer is never displaced.
//
// Failing costs a source more each time. Every upgrade from an address that
// fails (displaced, timed out, refused, a protocol error) adds one to the
// address's score, which halves every sourceHalfLife; one that succeeds
// clears it. The score shrinks the address's per-IP limit (halved for each
// costStep of score, down to one), decides who leaves a full probation set
// (the highest score, then the oldest), and keeps a newcomer out of it when
// its score is above everyone's there.
//
// What an attacker with K sockets on M addresses can do: hold at most
// min(K, M × its per-IP limit, subnets × MaxInboundUpgradesPerSubnet)
// slots, and only until a newcomer with more progress needs one; churn the
// probation set, where its addresses, failing, rank below a source that
// has not failed. To keep an honest peer out it must keep every slot ahead
// of the honest handshake's first flight, which means completing the
// simopen stage on each, faster than the honest peer does.
//
// All fields below mu are guarded by it; the counters are atomic so that
// Stats never takes the lock on a hot path's behalf.
type admission struct {
	maxInFlight       int
	maxPerIP          int
	maxPerSubnet      int
	maxProbation      int
	maxProbationPerIP int

	mu        sync.Mutex
	slots     map[*slot]struct{} // the pool
	probation map[*slot]struct{}
	perIP     map[netip.Addr]int // pool slots per address
	perSub    map[netip.Prefix]int
	probIP    map[netip.Addr]int // probation slots per address
	sources   map[netip.Addr]*source
	nextSeq   uint64
	inFlight  int

	refusedGlobal    atomic.Uint64
	refusedPerIP     atomic.Uint64
	refusedSubnet    atomic.Uint64
	refusedProbation atomic.Uint64
	evicted          atomic.Uint64
	dropped          atomic.Uint64
	peak             atomic.Int64
}

// Source scores (see admission).
const (
	sourceHalfLife = 30 * time.Second
	costStep       = 8    // score that halves a source's per-IP limit
	maxSources     = 4096 // addresses remembered; the least-scored go first
)

// source is what admission remembers of a failing address.
type source struct {
	score float64
	at    time.Time // when score was last updated
}

func (s *source) now(t time.Time) float64 {
	return s.score * math.Exp2(-float64(t.Sub(s.at))/float64(sourceHalfLife))
}

func newAdmission(maxInFlight, maxPerIP, maxPerSubnet, maxProbation, maxProbationPerIP int) *admission {
	return &admission{
		maxInFlight: maxInFlight, maxPerIP: maxPerIP, maxPerSubnet: maxPerSubnet,
		maxProbation: maxProbation, maxProbationPerIP: maxProbationPerIP,
		slots: make(map[*slot]struct{}), probation: make(map[*slot]struct{}),
		perIP: make(map[netip.Addr]int), perSub: make(map[netip.Prefix]int),
		probIP: make(map[netip.Addr]int), sources: make(map[netip.Addr]*source),
	}
}

// refusal says where a connection stands: admitted to the pool, on
// probation, or refused by which limit.
type refusal uint8

const (
	admitted refusal = iota
	onProbation
	overGlobal
	overPerIP
	overPerSubnet
	overProbation
)

// Progress of an upgrade in a slot, in the order eviction respects.
const (
	progressNone          int32 = iota // nothing received yet
	progressSimopen                    // bytes received, election or selection running
	progressSecurity                   // the security handshake running
	progressAuthenticated              // the peer is authenticated: never evicted
)

// slot is one upgrade's place in the pool or on probation.
type slot struct {
	a      *admission
	ip     netip.Addr
	subnet netip.Prefix
	seq    uint64      // admission order: lower is older
	end    func(error) // ends the upgrade with a cause; called at most once, without a.mu held

	stage atomic.Int32 // a progress* value
	bytes atomic.Int64 // bytes received from the peer

	// Guarded by a.mu.
	onProbation bool
	gone        bool // finished, evicted or refused
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

// received records n bytes from the peer. A slot on probation claims its
// place in the pool at its first bytes; the error says why it could not,
// and the slot's upgrade has then been ended with it.
func (s *slot) received(n int) error {
	if s.bytes.Add(int64(n)) != int64(n) {
		return nil
	}
	s.advance(progressSimopen)
	return s.a.claim(s)
}

// finish frees the slot and records the upgrade's outcome against its
// source; it is idempotent, and frees nothing after an eviction.
func (s *slot) finish(ok bool) {
	a := s.a
	a.mu.Lock()
	a.dropLocked(s)
	if ok {
		delete(a.sources, s.ip)
	} else {
		a.failLocked(s.ip, time.Now())
	}
	a.mu.Unlock()
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

// scoreLocked is ip's score now.
func (a *admission) scoreLocked(ip netip.Addr, now time.Time) float64 {
	if src := a.sources[ip]; src != nil {
		return src.now(now)
	}
	return 0
}

// failLocked adds a failure to ip's score.
func (a *admission) failLocked(ip netip.Addr, now time.Time) {
	src := a.sources[ip]
	if src == nil {
		if len(a.sources) >= maxSources {
			a.forgetOneLocked(now)
		}
		src = &source{}
		a.sources[ip] = src
	}
	src.score, src.at = src.now(now)+1, now
}

// forgetOneLocked drops the least-scored of a few remembered addresses
// (map order is random, so these are a sample).
func (a *admission) forgetOneLocked(now time.Time) {
	var low netip.Addr
	lowScore, n := math.Inf(1), 0
	for ip, src := range a.sources {
		if sc := src.now(now); sc < lowScore {
			low, lowScore = ip, sc
		}
		if n++; n == 16 {
			break
		}
	}
	delete(a.sources, low)
}

// perIPLimitLocked is ip's per-IP limit, shrunk by its score.
func (a *admission) perIPLimitLocked(ip netip.Addr, now time.Time) int {
	halvings := min(int(a.scoreLocked(ip, now)/costStep), 30)
	return max(1, a.maxPerIP>>halvings)
}

// fullLocked names the narrowest limit a new pool slot for ip would
// exceed, and which slots that limit counts; admitted if none.
func (a *admission) fullLocked(ip netip.Addr, sub netip.Prefix, now time.Time) (refusal, func(*slot) bool) {
	switch {
	case a.perIP[ip] >= a.perIPLimitLocked(ip, now):
		return overPerIP, func(x *slot) bool { return x.ip == ip }
	case a.perSub[sub] >= a.maxPerSubnet:
		return overPerSubnet, func(x *slot) bool { return x.subnet == sub }
	case a.inFlight >= a.maxInFlight:
		return overGlobal, func(*slot) bool { return true }
	}
	return admitted, nil
}

func (a *admission) countRefusal(why refusal) {
	switch why {
	case overGlobal:
		a.refusedGlobal.Add(1)
	case overPerIP:
		a.refusedPerIP.Add(1)
	case overPerSubnet:
		a.refusedSubnet.Add(1)
	case overProbation:
		a.refusedProbation.Add(1)
	}
}

// acquire takes a place for a connection from ip: a pool slot when no
// limit is full, a probation slot otherwise (displacing, if probation is
// full, the probation slot of the same address that is oldest when the
// address has its probation share, else the one whose source has the
// highest score, then the oldest, unless that score is below ip's). end
// is how the slot's upgrade is ended should it be displaced or refused
// later.
func (a *admission) acquire(ip netip.Addr, end func(error)) (*slot, refusal) {
	ip = ip.Unmap()
	sub := subnetOf(ip)
	now := time.Now()
	a.mu.Lock()
	a.nextSeq++
	s := &slot{a: a, ip: ip, subnet: sub, seq: a.nextSeq, end: end}
	if why, _ := a.fullLocked(ip, sub, now); why == admitted {
		a.addLocked(s)
		a.mu.Unlock()
		return s, admitted
	}
	var victim *slot
	switch {
	case a.probIP[ip] >= a.maxProbationPerIP:
		for x := range a.probation {
			if x.ip == ip && (victim == nil || x.seq < victim.seq) {
				victim = x
			}
		}
	case len(a.probation) >= a.maxProbation:
		var vScore float64
		for x := range a.probation {
			sc := a.scoreLocked(x.ip, now)
			if victim == nil || sc > vScore || sc == vScore && x.seq < victim.seq {
				victim, vScore = x, sc
			}
		}
		if victim != nil && vScore < a.scoreLocked(ip, now) {
			a.failLocked(ip, now)
			a.mu.Unlock()
			a.refusedProbation.Add(1)
			return nil, overProbation
		}
	}
	if victim != nil {
		a.dropLocked(victim)
		a.dropped.Add(1)
	}
	s.onProbation = true
	a.probation[s] = struct{}{}
	a.probIP[ip]++
	a.mu.Unlock()
	if victim != nil && victim.end != nil {
		victim.end(ErrEvicted)
	}
	return s, onProbation
}

// claim moves a probation slot into the pool now that it has received its
// first bytes, displacing the least-advanced upgrade the full limit counts
// if that one has made less progress than s; otherwise s is refused.
func (a *admission) claim(s *slot) error {
	a.mu.Lock()
	if !s.onProbation || s.gone {
		a.mu.Unlock()
		return nil // in the pool already, or its end is under way
	}
	why, in := a.fullLocked(s.ip, s.subnet, time.Now())
	var victim *slot
	if why != admitted {
		victim = a.victimLocked(in)
		if victim == nil || !behind(victim, s) {
			a.dropLocked(s)
			a.mu.Unlock()
			a.countRefusal(why)
			err := a.refusalError(why)
			if s.end != nil {
				s.end(err)
			}
			return err
		}
		a.dropLocked(victim)
		a.evicted.Add(1)
	}
	a.dropLocked(s)
	s.gone = false
	a.addLocked(s)
	a.mu.Unlock()
	if victim != nil && victim.end != nil {
		victim.end(ErrEvicted)
	}
	return nil
}

// behind reports whether v has made less progress than s.
func behind(v, s *slot) bool {
	vs, ss := v.stage.Load(), s.stage.Load()
	return vs < ss || vs == ss && v.bytes.Load() < s.bytes.Load()
}

// refusalError is the error a connection refused by why ends with.
func (a *admission) refusalError(why refusal) error {
	switch why {
	case overPerIP:
		return fmt.Errorf("%w: %d upgrades in flight from one address", ErrAdmissionRefused, a.maxPerIP)
	case overPerSubnet:
		return fmt.Errorf("%w: %d upgrades in flight from one subnet", ErrAdmissionRefused, a.maxPerSubnet)
	case overProbation:
		return fmt.Errorf("%w: %d connections on probation, from addresses that fail less", ErrAdmissionRefused, a.maxProbation)
	}
	return fmt.Errorf("%w: %d upgrades in flight, none behind this one", ErrAdmissionRefused, a.maxInFlight)
}

// addLocked puts s in the pool.
func (a *admission) addLocked(s *slot) {
	s.onProbation = false
	a.slots[s] = struct{}{}
	a.inFlight++
	a.perIP[s.ip]++
	a.perSub[s.subnet]++
	if n := int64(a.inFlight); n > a.peak.Load() {
		a.peak.Store(n) // under mu, so no lost update
	}
}

// victimLocked is the unauthenticated pool slot for which in is true with
// the least progress: the earliest stage, then the fewest bytes, then the
// oldest; nil if there is none.
func (a *admission) victimLocked(in func(*slot) bool) *slot {
	var v *slot
	for s := range a.slots {
		if s.stage.Load() >= progressAuthenticated || !in(s) {
			continue
		}
		if v == nil || behind(s, v) || !behind(v, s) && s.seq < v.seq {
			v = s
		}
	}
	return v
}

// dropLocked takes s out of the pool or probation; idempotent.
func (a *admission) dropLocked(s *slot) {
	if s.gone {
		return
	}
	s.gone = true
	if s.onProbation {
		delete(a.probation, s)
		if a.probIP[s.ip]--; a.probIP[s.ip] <= 0 {
			delete(a.probIP, s.ip)
		}
		return
	}
	delete(a.slots, s)
	a.inFlight--
	if a.perIP[s.ip]--; a.perIP[s.ip] <= 0 {
		delete(a.perIP, s.ip)
	}
	if a.perSub[s.subnet]--; a.perSub[s.subnet] <= 0 {
		delete(a.perSub, s.subnet)
	}
}

// inFlightNow is the number of pool slots held; onProbationNow, the
// number of probation ones.
func (a *admission) inFlightNow() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inFlight
}

func (a *admission) onProbationNow() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.probation)
}

// watchedConn is an inbound raw connection whose reads feed its slot's
// progress, and whose first byte stops the first-byte timer.
//
// Its first read asks for up to firstReadSize bytes whatever the caller's
// buffer, so that a slot's first claim counts the peer's whole first
// flight (a parser that reads a varint one byte at a time would otherwise
// present an honest dialer as a one-byte trickle); the bytes beyond the
// caller's buffer are returned by the next reads.
type watchedConn struct {
	net.Conn
	s         *slot
	firstByte func() // called once, at the first byte; may be nil
	once      sync.Once

	started bool   // the first read has been made; only Read's goroutine
	ahead   []byte // read ahead by the first read, not yet returned
}

// firstReadSize bounds the first read: more than any honest dialer's
// first flight (the multistream header and a proposal or two).
const firstReadSize = 512

func (c *watchedConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		if len(c.ahead) == 0 {
			c.ahead = nil // an empty slice of it would keep the buffer for the connection's life
		}
		return n, nil
	}
	if !c.started && len(p) > 0 && len(p) < firstReadSize {
		c.started = true
		buf := make([]byte, firstReadSize)
		n, err := c.read(buf)
		k := copy(p, buf[:n])
		if k < n {
			c.ahead = buf[k:n]
			return k, nil // err, if any, comes again at the next read
		}
		return k, err
	}
	c.started = true
	return c.read(p)
}

func (c *watchedConn) read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		if cerr := c.s.received(n); cerr != nil {
			return 0, cerr
		}
		if c.firstByte != nil {
			c.once.Do(c.firstByte)
		}
	}
	return n, err
}
