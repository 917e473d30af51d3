package upgrader

import (
	"context"
	"errors"
	"io"
	"net"
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
		hold("10.0.0.1") // third from one IP: over the per-IP limit
		hold("10.0.0.2")
		hold("10.0.0.2")
		hold("10.0.0.3") // fifth in flight: over the global limit
		s := l.Stats()
		if s.InFlight != 4 || s.RefusedPerIP != 1 || s.RefusedInFlight != 1 {
			t.Fatalf("stats = %+v, want 4 in flight, 1 refused per IP, 1 refused in flight", s)
		}
		// A refused connection is closed at once, before any byte is read.
		buf := make([]byte, 1)
		for _, i := range []int{2, 5} {
			_ = silent[i].SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := silent[i].Read(buf); !errors.Is(err, io.EOF) {
				t.Errorf("refused conn %d: read = %v, want io.EOF (closed by the listener)", i, err)
			}
		}
		mu.Lock()
		if len(refused) != 2 || !errors.Is(refused[0], ErrAdmissionRefused) || !errors.Is(refused[1], ErrAdmissionRefused) {
			t.Errorf("refusal events = %v, want two ErrAdmissionRefused", refused)
		}
		mu.Unlock()

		// The silent ones time out and release their slots; then an honest
		// peer gets through.
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		if s := l.Stats(); s.InFlight != 0 || s.Failed != 4 || s.PeakInFlight != 4 {
			t.Fatalf("after the deadline: stats = %+v, want 0 in flight, 4 failed, peak 4", s)
		}
		ua := newUpgrader(t, Config{})
		raw := dialMem(ml, "10.0.0.1")
		ca, err := ua.Upgrade(context.Background(), raw, network.DirOutbound, ub.LocalPeer())
		if err != nil {
			t.Fatalf("honest dial after the flood: %v", err)
		}
		defer ca.Close()
		cb, err := l.Accept(context.Background())
		if err != nil {
			t.Fatalf("honest accept after the flood: %v", err)
		}
		defer cb.Close()
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
