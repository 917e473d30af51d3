package upgrader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
)

// memListener is a RawListener fed by the test.
type memListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newMemListener() *memListener {
	return &memListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *memListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *memListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// ipConn gives an in-memory conn a TCP remote address, for per-IP limits.
type ipConn struct {
	net.Conn
	remote *net.TCPAddr
}

func (c ipConn) RemoteAddr() net.Addr { return c.remote }

// dialMem hands one end of a new pipe to l, from source address ip, and
// returns the other end.
func dialMem(l *memListener, ip string) net.Conn {
	a, b := pipe(0)
	l.conns <- ipConn{Conn: b, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 4000}}
	return a
}

func TestListenerAcceptsAndUpgrades(t *testing.T) {
	ub := newUpgrader(t, Config{})
	ml := newMemListener()
	l := ub.ListenRaw(ml)
	defer l.Close()
	ua := newUpgrader(t, Config{})

	for i := range 3 {
		raw := dialMem(ml, "10.1.0.1")
		ca, err := ua.Upgrade(context.Background(), raw, network.DirOutbound, ub.LocalPeer())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		cb, err := l.Accept(context.Background())
		if err != nil {
			t.Fatalf("accept %d: %v", i, err)
		}
		if cb.RemotePeer() != ua.LocalPeer() || cb.Direction() != network.DirInbound {
			t.Fatalf("accepted conn: peer %s dir %v", cb.RemotePeer(), cb.Direction())
		}
		checkEcho(t, ca, cb, "through the listener")
		_ = ca.Close()
		_ = cb.Close()
	}
	if s := l.Stats(); s.Accepted != 3 || s.Upgraded != 3 || s.Failed != 0 {
		t.Errorf("stats = %+v, want 3 accepted, 3 upgraded", s)
	}
}

func TestListenerAdmissionLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var refused []error
		ub := newUpgrader(t, Config{
			MaxInboundUpgrades: 4, MaxInboundUpgradesPerIP: 2, HandshakeTimeout: 10 * time.Second,
			FirstByteTimeout: -1, // the handshake timeout alone bounds the silent ones here
			Observer: func(e Event) {
				if r, ok := e.(InboundRefused); ok {
					mu.Lock()
					refused = append(refused, r.Reason)
					mu.Unlock()
				}
			},
		})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		defer l.Close()

		// Slowloris: connections that never speak hold upgrade slots.
		var silent []net.Conn
		hold := func(ip string) {
			c := dialMem(ml, ip)
			silent = append(silent, c)
			synctest.Wait()
		}
		hold("10.0.0.1")
		hold("10.0.0.1")
		hold("10.0.0.1") // third from one IP: over the per-IP limit, on probation
		hold("10.0.0.2")
		hold("10.0.0.2")
		hold("10.0.0.3") // fifth in flight: over the global limit, on probation
		s := l.Stats()
		if s.InFlight != 4 || s.OnProbation != 2 || s.Evicted != 0 || s.RefusedPerIP != 0 || s.RefusedInFlight != 0 {
			t.Fatalf("stats = %+v, want 4 in flight, 2 on probation, none evicted or refused", s)
		}
		// Newcomers that say nothing displace no one.
		for i := range silent {
			_ = silent[i].SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := io.ReadAll(silent[i]); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("conn %d, still in its handshake: read = %v, want a timeout", i, err)
			}
			_ = silent[i].SetReadDeadline(time.Time{})
		}
		// An honest peer behind the first address speaks: it displaces
		// that address's oldest silent upgrade (0), which is closed by the
		// listener: after the responder's header, EOF.
		ua := newUpgrader(t, Config{})
		honest := func() {
			t.Helper()
			ca, err := ua.Upgrade(context.Background(), dialMem(ml, "10.0.0.1"), network.DirOutbound, ub.LocalPeer())
			if err != nil {
				t.Fatalf("honest dial: %v", err)
			}
			defer ca.Close()
			cb, err := l.Accept(context.Background())
			if err != nil {
				t.Fatalf("honest accept: %v", err)
			}
			defer cb.Close()
		}
		honest()
		_ = silent[0].SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := io.ReadAll(silent[0]); err != nil {
			t.Errorf("evicted conn 0: read = %v, want EOF (closed by the listener)", err)
		}
		if s := l.Stats(); s.Evicted != 1 || s.Upgraded != 1 {
			t.Fatalf("stats = %+v, want 1 evicted and 1 upgraded", s)
		}
		mu.Lock()
		if len(refused) != 0 {
			t.Errorf("refusal events = %v, want none while something could be evicted", refused)
		}
		mu.Unlock()

		// The silent ones time out and release their places; then an
		// honest peer gets through without displacing anyone.
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if s := l.Stats(); s.InFlight != 0 || s.OnProbation != 0 || s.Failed != 6 || s.PeakInFlight != 4 {
			t.Fatalf("after the deadline: stats = %+v, want 0 in flight or on probation, 6 failed (5 silent, 1 evicted), peak 4", s)
		}
		honest()
		if s := l.Stats(); s.Evicted != 1 || s.Upgraded != 2 {
			t.Fatalf("stats = %+v, want still 1 evicted and now 2 upgraded", s)
		}
		for _, c := range silent {
			_ = c.Close()
		}
	})
}

type refuseAll struct{}

var errNotWelcome = errors.New("not welcome")

func (refuseAll) InterceptAccept(net.Addr) error { return errNotWelcome }
func (refuseAll) InterceptSecured(network.Direction, peer.ID, net.Addr) error {
	return nil
}
func (refuseAll) InterceptUpgraded(*Conn) error { return nil }

func TestListenerGaterAndBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ub := newUpgrader(t, Config{Gater: refuseAll{}})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		c := dialMem(ml, "10.0.0.9")
		synctest.Wait()
		if s := l.Stats(); s.RefusedGated != 1 || s.InFlight != 0 {
			t.Errorf("gated: stats = %+v, want 1 refused by the gater", s)
		}
		_ = c.Close()
		_ = l.Close()

		// Backlog of 1: the second upgraded conn that nobody accepts is
		// refused, not queued.
		ub = newUpgrader(t, Config{AcceptBacklog: 1})
		ml = newMemListener()
		l = ub.ListenRaw(ml)
		defer l.Close()
		ua := newUpgrader(t, Config{})
		c1, err := ua.Upgrade(context.Background(), dialMem(ml, "10.0.0.1"), network.DirOutbound, ub.LocalPeer())
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		synctest.Wait()
		c2 := dialMem(ml, "10.0.0.2")
		synctest.Wait()
		if s := l.Stats(); s.RefusedBacklog != 1 {
			t.Errorf("backlog: stats = %+v, want 1 refused for a full backlog", s)
		}
		_ = c2.Close()
	})
}

func TestListenerCloseJoinsUpgrades(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ub := newUpgrader(t, Config{})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		var silent []net.Conn
		for range 5 {
			silent = append(silent, dialMem(ml, "10.0.0.1"))
		}
		synctest.Wait()
		start := time.Now()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("Close waited %v for upgrades in flight; it must abort them", d)
		}
		if _, err := l.Accept(context.Background()); !errors.Is(err, ErrClosed) {
			t.Errorf("Accept after Close = %v, want ErrClosed", err)
		}
		for _, c := range silent {
			_ = c.Close()
		}
		// goleak in TestMain checks that nothing is left running.
	})
}

// TestListenerFullOfSilentSocketsAdmitsHonest: a pool filled by silent
// sockets from many addresses (the attack that took a node off the network
// with per-IP limits alone) still admits an honest peer at once, by
// displacing a silent one; and more silent sockets arriving afterwards do
// not displace the honest handshake.
func TestListenerFullOfSilentSocketsAdmitsHonest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ub := newUpgrader(t, Config{MaxInboundUpgrades: 8, MaxInboundUpgradesPerIP: 2, FirstByteTimeout: -1})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		defer l.Close()
		var silent []net.Conn
		defer func() {
			for _, c := range silent {
				_ = c.Close()
			}
		}()
		flood := func(n, base int) {
			for i := range n {
				silent = append(silent, dialMem(ml, fmt.Sprintf("10.%d.0.1", base+i)))
				synctest.Wait()
			}
		}
		flood(8, 0)
		if s := l.Stats(); s.InFlight != 8 {
			t.Fatalf("stats %+v, want the pool full of silent sockets", s)
		}
		ua := newUpgrader(t, Config{})
		raw := dialMem(ml, "192.0.2.1")
		type result struct {
			c   *Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := ua.Upgrade(context.Background(), raw, network.DirOutbound, ub.LocalPeer())
			done <- result{c, err}
		}()
		flood(40, 100) // the attacker keeps reconnecting
		r := <-done
		if r.err != nil {
			t.Fatalf("honest upgrade against a full pool: %v", r.err)
		}
		defer r.c.Close()
		cb, err := l.Accept(context.Background())
		if err != nil {
			t.Fatalf("honest accept: %v", err)
		}
		defer cb.Close()
		// The honest peer displaced one silent socket; the silent arrivals
		// after it waited on probation, bounded, and displaced no one.
		if s := l.Stats(); s.Evicted != 1 || s.Upgraded != 1 || s.RefusedInFlight != 0 || s.OnProbation > DefaultMaxInboundProbation {
			t.Fatalf("stats %+v, want 1 eviction, no refusal, 1 upgrade and probation within its bound", s)
		}
	})
}

// TestListenerFullOfTricklesAdmitsHonest: a pool whose every upgrade has
// received a few trickled bytes still admits an honest peer, whose first
// flight is counted whole at its first read (the multistream reader asks
// for one byte first) and puts it ahead of the trickles.
func TestListenerFullOfTricklesAdmitsHonest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ub := newUpgrader(t, Config{MaxInboundUpgrades: 4, FirstByteTimeout: -1})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		defer l.Close()
		header := append([]byte{byte(len("/multistream/1.0.0\n"))}, "/multistream/1.0.0\n"...)
		for i := range 4 {
			c := dialMem(ml, fmt.Sprintf("10.%d.0.1", i))
			defer c.Close()
			go func() { _, _ = io.Copy(io.Discard, c) }()
			if _, err := c.Write(header[:3]); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		if s := l.Stats(); s.InFlight != 4 {
			t.Fatalf("stats %+v, want the pool full of trickles", s)
		}
		ua := newUpgrader(t, Config{})
		ca, err := ua.Upgrade(context.Background(), dialMem(ml, "192.0.2.1"), network.DirOutbound, ub.LocalPeer())
		if err != nil {
			t.Fatalf("honest upgrade against a pool of trickles: %v", err)
		}
		defer ca.Close()
		cb, err := l.Accept(context.Background())
		if err != nil {
			t.Fatalf("honest accept: %v", err)
		}
		defer cb.Close()
		if s := l.Stats(); s.Evicted != 1 || s.Upgraded != 1 {
			t.Fatalf("stats %+v, want 1 trickle evicted and 1 upgrade", s)
		}
	})
}

// TestListenerFirstByteTimeout: a dialer speaks first; an inbound
// connection silent for FirstByteTimeout fails with ErrFirstByteTimeout
// (which matches ErrHandshakeTimeout) and is closed; one that speaks in
// time is not cut by it.
func TestListenerFirstByteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var failures []error
		ub := newUpgrader(t, Config{FirstByteTimeout: 500 * time.Millisecond, Observer: func(e Event) {
			if f, ok := e.(UpgradeFinished); ok && f.Err != nil {
				mu.Lock()
				failures = append(failures, f.Err)
				mu.Unlock()
			}
		}})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		defer l.Close()
		c := dialMem(ml, "10.0.0.1")
		defer c.Close()
		start := time.Now()
		time.Sleep(499 * time.Millisecond)
		synctest.Wait()
		if s := l.Stats(); s.InFlight != 1 {
			t.Fatalf("at 499 ms: stats %+v, want the silent upgrade still in flight", s)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if s := l.Stats(); s.InFlight != 0 || s.Failed != 1 {
			t.Fatalf("after %v: stats %+v, want the silent upgrade failed", time.Since(start), s)
		}
		mu.Lock()
		if len(failures) != 1 || !errors.Is(failures[0], ErrFirstByteTimeout) || !errors.Is(failures[0], ErrHandshakeTimeout) {
			t.Errorf("failures %v, want one ErrFirstByteTimeout matching ErrHandshakeTimeout", failures)
		}
		mu.Unlock()

		// A peer whose first byte comes at 400 ms, then completes, is fine.
		ua := newUpgrader(t, Config{})
		raw := dialMem(ml, "10.0.0.2")
		time.Sleep(400 * time.Millisecond)
		ca, err := ua.Upgrade(context.Background(), raw, network.DirOutbound, ub.LocalPeer())
		if err != nil {
			t.Fatalf("upgrade speaking at 400 ms: %v", err)
		}
		defer ca.Close()
		cb, err := l.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close()
	})
}
