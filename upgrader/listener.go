package upgrader

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/transport/tcp"
)

// Listener accepts raw connections from a transport listener and upgrades
// them concurrently, so one slow peer cannot stall the others.
//
// Admission (ARCHITECTURE.md decision 7): at most Config.MaxInboundUpgrades
// upgrades run at once, at most Config.MaxInboundUpgradesPerIP from one
// source address and Config.MaxInboundUpgradesPerSubnet from one /24 or
// /64, and at most Config.AcceptBacklog upgraded connections wait for
// Accept. When a limit is full, the newcomer waits on probation (at most
// Config.MaxInboundProbation of them) for its first bytes, then displaces
// the unauthenticated upgrade that limit counts which has made less
// progress (see admission), and that one fails with ErrEvicted; an
// authenticated one is never displaced. Sources whose upgrades keep
// failing get smaller limits and lose their probation places first. A
// connection refused, or over the backlog, is closed and counted in Stats;
// nothing queues without bound. A
// dialer speaks first, so an inbound connection that sends nothing within
// Config.FirstByteTimeout (1 s) fails with ErrFirstByteTimeout.
//
// Goroutines: one accept loop, plus one per upgrade in flight. Close stops
// the loop, cancels the upgrades in flight and joins them all.
type Listener struct {
	u   *Upgrader
	tl  RawListener
	adm *admission

	ctx    context.Context // cancelled by Close; parent of every upgrade
	cancel context.CancelFunc
	ready  chan *Conn // upgrade goroutines -> Accept
	wg     sync.WaitGroup

	closeOnce sync.Once
	loopErr   atomic.Pointer[error] // why the accept loop ended

	accepted     atomic.Uint64
	upgraded     atomic.Uint64
	failed       atomic.Uint64
	refusedGated atomic.Uint64
	refusedQueue atomic.Uint64
}

// RawListener is what a Listener upgrades from: *tcp.Listener, or any
// listener of raw connections (tests use in-memory ones).
type RawListener interface {
	Accept() (net.Conn, error)
	Close() error
	Addr() net.Addr
}

// tcpRaw adapts *tcp.Listener, whose Accept returns *tcp.Conn.
type tcpRaw struct{ *tcp.Listener }

func (l tcpRaw) Accept() (net.Conn, error) { return l.Listener.Accept() }

// Listen starts upgrading the connections tl accepts. The Listener owns tl
// and closes it on Close.
func (u *Upgrader) Listen(tl *tcp.Listener) *Listener { return u.ListenRaw(tcpRaw{tl}) }

// ListenRaw is Listen for any RawListener.
func (u *Upgrader) ListenRaw(rl RawListener) *Listener {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		u: u, tl: rl,
		adm: newAdmission(u.cfg.MaxInboundUpgrades, u.cfg.MaxInboundUpgradesPerIP, u.cfg.MaxInboundUpgradesPerSubnet,
			u.cfg.MaxInboundProbation, u.cfg.MaxInboundProbationPerIP),
		ctx: ctx, cancel: cancel, ready: make(chan *Conn, u.cfg.AcceptBacklog),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next upgraded connection. It returns an error wrapping
// ErrClosed after Close, and ctx's cause when ctx ends first.
func (l *Listener) Accept(ctx context.Context) (*Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	default:
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.ctx.Done():
		return nil, l.closedErr()
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (l *Listener) closedErr() error {
	if p := l.loopErr.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrClosed, *p)
	}
	return ErrClosed
}

// Addr is the transport listener's address.
func (l *Listener) Addr() net.Addr { return l.tl.Addr() }

// Multiaddr is the listener's address as a multiaddr, nil if it is not TCP.
func (l *Listener) Multiaddr() ma.Multiaddr {
	if ta, ok := l.tl.Addr().(*net.TCPAddr); ok {
		m, _ := tcp.FromTCPAddr(ta)
		return m
	}
	return nil
}

// Close stops accepting, aborts the upgrades in flight, closes the
// connections upgraded but not accepted, and waits for every goroutine of
// the Listener to end. It is idempotent.
func (l *Listener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.cancel()
		err = l.tl.Close()
		l.wg.Wait()
		for {
			select {
			case c := <-l.ready:
				_ = c.Close()
			default:
				return
			}
		}
	})
	return err
}

// ListenerStats counts what a Listener did with the connections it
// accepted.
type ListenerStats struct {
	Accepted uint64 // raw connections accepted
	Upgraded uint64 // upgrades that succeeded
	Failed   uint64 // upgrades that failed
	// Refused connections were closed without an upgrade, by limit.
	RefusedInFlight  uint64 // MaxInboundUpgrades
	RefusedPerIP     uint64 // MaxInboundUpgradesPerIP
	RefusedSubnet    uint64 // MaxInboundUpgradesPerSubnet
	RefusedProbation uint64 // MaxInboundProbation full of better-scored sources
	// Evicted upgrades were displaced by a newcomer with more progress
	// when a limit was full.
	Evicted uint64
	// Dropped connections were on probation and made room for a newcomer.
	Dropped        uint64
	RefusedBacklog uint64 // AcceptBacklog full
	RefusedGated   uint64 // the gater's InterceptAccept
	InFlight       int    // upgrades running now
	OnProbation    int    // connections on probation now
	PeakInFlight   int    // the most that ever ran at once
}

// Stats returns the listener's counters.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		Accepted: l.accepted.Load(), Upgraded: l.upgraded.Load(), Failed: l.failed.Load(),
		RefusedInFlight: l.adm.refusedGlobal.Load(), RefusedPerIP: l.adm.refusedPerIP.Load(),
		RefusedSubnet: l.adm.refusedSubnet.Load(), RefusedProbation: l.adm.refusedProbation.Load(),
		Evicted: l.adm.evicted.Load(), Dropped: l.adm.dropped.Load(),
		RefusedBacklog: l.refusedQueue.Load(), RefusedGated: l.refusedGated.Load(),
		InFlight: l.adm.inFlightNow(), OnProbation: l.adm.onProbationNow(), PeakInFlight: int(l.adm.peak.Load()),
	}
}

// acceptLoop owns the transport listener's Accept. Temporary accept errors
// (out of file descriptors, typically) back off from 5 ms to 1 s, as
// net/http does, rather than spin.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		raw, err := l.tl.Accept()
		if err != nil {
			if l.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				l.loopErr.Store(&err)
				l.cancel()
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-l.ctx.Done():
				t.Stop()
				return
			}
			continue
		}
		delay = 0
		l.accepted.Add(1)
		l.admit(raw)
	}
}

// admit applies the limits to raw and starts its upgrade, or refuses it.
func (l *Listener) admit(raw net.Conn) {
	refuse := func(counter *atomic.Uint64, reason error) {
		if counter != nil {
			counter.Add(1)
		}
		_ = raw.Close()
		l.u.observe(InboundRefused{Remote: raw.RemoteAddr(), Reason: reason})
	}
	if g := l.u.cfg.Gater; g != nil {
		if err := g.InterceptAccept(raw.RemoteAddr()); err != nil {
			refuse(&l.refusedGated, fmt.Errorf("%w: %w", ErrGated, err))
			return
		}
	}
	// Upgrades in flight plus connections waiting for Accept may not
	// exceed the backlog's room: refusing now costs nothing, refusing after
	// the handshake wastes it.
	if len(l.ready) >= cap(l.ready) {
		refuse(&l.refusedQueue, fmt.Errorf("%w: accept backlog of %d full", ErrAdmissionRefused, cap(l.ready)))
		return
	}
	ctx, cancel := context.WithCancelCause(l.ctx)
	sl, why := l.adm.acquire(remoteIP(raw.RemoteAddr()), cancel)
	if sl == nil {
		cancel(nil)
		refuse(nil, l.adm.refusalError(why))
		return
	}
	var firstByte func()
	if d := l.u.cfg.FirstByteTimeout; d > 0 {
		t := time.AfterFunc(d, func() { cancel(ErrFirstByteTimeout) })
		firstByte = func() { t.Stop() }
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer cancel(nil)
		c, err := l.u.upgrade(ctx, &watchedConn{Conn: raw, s: sl, firstByte: firstByte}, network.DirInbound, network.RoleUnknown, "", sl)
		if firstByte != nil {
			firstByte()
		}
		sl.finish(err == nil)
		if err != nil {
			_ = raw.Close()
			l.failed.Add(1)
			return
		}
		l.upgraded.Add(1)
		select {
		case l.ready <- c:
		default:
			_ = c.Close()
			l.refusedQueue.Add(1)
			l.u.observe(InboundRefused{Remote: raw.RemoteAddr(), Reason: fmt.Errorf("%w: accept backlog of %d full", ErrAdmissionRefused, cap(l.ready))})
		}
	}()
}

// remoteIP extracts the IP of a remote address; the zero Addr (one bucket)
// for addresses that are not IP (in-memory pipes).
func remoteIP(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip
	case interface{ AddrPort() netip.AddrPort }:
		return a.AddrPort().Addr()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr()
	}
	return netip.Addr{}
}
