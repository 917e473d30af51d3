package concordlibp2p

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
)

// countingRcmgr records every connection scope it opens and how each was
// used. refuseOpen makes OpenConnection fail; refusePeer makes SetPeer of
// that peer fail.
type countingRcmgr struct {
	lnetwork.NullResourceManager
	refuseOpen bool
	refusePeer lpeer.ID

	mu      sync.Mutex
	scopes  []*countingScope
	changed chan struct{} // closed and replaced at every Done
}

type countingScope struct {
	*lnetwork.NullScope
	rm *countingRcmgr

	dir   lnetwork.Direction
	peers []lpeer.ID // SetPeer calls
	done  int        // Done calls
}

func (r *countingRcmgr) OpenConnection(dir lnetwork.Direction, _ bool, _ ma.Multiaddr) (lnetwork.ConnManagementScope, error) {
	if r.refuseOpen {
		return nil, errors.New("test: refused")
	}
	s := &countingScope{NullScope: &lnetwork.NullScope{}, rm: r, dir: dir}
	r.mu.Lock()
	r.scopes = append(r.scopes, s)
	r.mu.Unlock()
	return s, nil
}

func (s *countingScope) SetPeer(p lpeer.ID) error {
	s.rm.mu.Lock()
	defer s.rm.mu.Unlock()
	s.peers = append(s.peers, p)
	if p == s.rm.refusePeer {
		return errors.New("test: peer refused")
	}
	return nil
}

func (s *countingScope) Done() {
	s.rm.mu.Lock()
	s.done++
	if s.rm.changed != nil {
		close(s.rm.changed)
	}
	s.rm.changed = make(chan struct{})
	s.rm.mu.Unlock()
}

// allDone waits until every scope opened is done (once) and returns an
// error describing the first that is not, or was done more than once.
func (r *countingRcmgr) allDone(within time.Duration) error {
	timeout := time.After(within)
	for {
		r.mu.Lock()
		var bad error
		for i, s := range r.scopes {
			if s.done != 1 {
				bad = fmt.Errorf("scope %d (%v): Done called %d times", i, s.dir, s.done)
				break
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		if bad == nil {
			return nil
		}
		select {
		case <-changed:
		case <-timeout:
			return bad
		}
	}
}

// testGater refuses what its fields say and counts its calls.
type testGater struct {
	refuseAccept, refuseSecured bool

	mu      sync.Mutex
	accepts int
	secured []lnetwork.Direction
}

func (g *testGater) InterceptPeerDial(lpeer.ID) bool               { return true }
func (g *testGater) InterceptAddrDial(lpeer.ID, ma.Multiaddr) bool { return true }
func (g *testGater) InterceptUpgraded(lnetwork.Conn) (bool, control.DisconnectReason) {
	return true, 0
}

func (g *testGater) InterceptAccept(lnetwork.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.accepts++
	return !g.refuseAccept
}

func (g *testGater) InterceptSecured(d lnetwork.Direction, _ lpeer.ID, _ lnetwork.ConnMultiaddrs) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secured = append(g.secured, d)
	return !g.refuseSecured
}

type ruledEnd struct {
	tr *Transport
	id lpeer.ID
	rm *countingRcmgr
	g  *testGater
}

func newRuledEnd(t *testing.T, rm *countingRcmgr, g *testGater) ruledEnd {
	t.Helper()
	k, id := newKey(t)
	var tr *Transport
	var err error
	if g != nil {
		tr, err = NewTransport(k, g, rm)
	} else {
		tr, err = NewTransport(k, nil, rm)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ruledEnd{tr: tr, id: id, rm: rm, g: g}
}

// dialOnce has b dial a's listener and returns both ends' results.
func dialOnce(t *testing.T, a, b ruledEnd, expect lpeer.ID) (dialed transport.CapableConn, dialErr error, accepted transport.CapableConn) {
	t.Helper()
	l, err := a.tr.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	acc := make(chan transport.CapableConn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(acc)
			return
		}
		acc <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	dialed, dialErr = b.tr.Dial(ctx, l.Multiaddr(), expect)
	if dialErr == nil {
		// A listener that refuses after the handshake (gater, SetPeer)
		// lets the dial succeed and closes the connection; Accept then
		// returns nothing.
		select {
		case accepted = <-acc:
		case <-dialed.(*conn).uc.Done():
		}
	}
	return dialed, dialErr, accepted
}

func TestResourceScopesAndGater(t *testing.T) {
	t.Run("success", func(t *testing.T) {
		a := newRuledEnd(t, &countingRcmgr{}, &testGater{})
		b := newRuledEnd(t, &countingRcmgr{}, &testGater{})
		d, err, acc := dialOnce(t, a, b, a.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.(lnetwork.ConnStat).Stat().Direction; got != lnetwork.DirOutbound {
			t.Errorf("dialed Stat().Direction %v", got)
		}
		if got := acc.(lnetwork.ConnStat).Stat().Direction; got != lnetwork.DirInbound {
			t.Errorf("accepted Stat().Direction %v", got)
		}
		for name, e := range map[string]ruledEnd{"listener": a, "dialer": b} {
			e.rm.mu.Lock()
			if len(e.rm.scopes) != 1 || len(e.rm.scopes[0].peers) != 1 {
				t.Errorf("%s: scopes %d, SetPeer calls %v; want one scope, one SetPeer", name, len(e.rm.scopes), e.rm.scopes)
			}
			e.rm.mu.Unlock()
		}
		a.rm.mu.Lock()
		if a.rm.scopes[0].peers[0] != b.id {
			t.Errorf("listener SetPeer(%s), want the dialer %s", a.rm.scopes[0].peers[0], b.id)
		}
		a.rm.mu.Unlock()
		if a.g.accepts != 1 || len(a.g.secured) != 1 || a.g.secured[0] != lnetwork.DirInbound {
			t.Errorf("listener gater: %d accepts, secured %v", a.g.accepts, a.g.secured)
		}
		if len(b.g.secured) != 1 || b.g.secured[0] != lnetwork.DirOutbound {
			t.Errorf("dialer gater: secured %v", b.g.secured)
		}
		if d.Scope() == nil || acc.Scope() == nil {
			t.Error("nil Scope")
		}
		_ = d.Close()
		_ = acc.Close()
		for name, e := range map[string]ruledEnd{"listener": a, "dialer": b} {
			if err := e.rm.allDone(5 * time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("wrong peer", func(t *testing.T) {
		a := newRuledEnd(t, &countingRcmgr{}, nil)
		b := newRuledEnd(t, &countingRcmgr{}, nil)
		_, other := newKey(t)
		if _, err, _ := dialOnce(t, a, b, other); err == nil {
			t.Fatal("dial with the wrong peer ID succeeded")
		}
		for name, e := range map[string]ruledEnd{"listener": a, "dialer": b} {
			if err := e.rm.allDone(5 * time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("gater refuses accept", func(t *testing.T) {
		a := newRuledEnd(t, &countingRcmgr{}, &testGater{refuseAccept: true})
		b := newRuledEnd(t, &countingRcmgr{}, nil)
		if _, err, _ := dialOnce(t, a, b, a.id); err == nil {
			t.Fatal("dial succeeded through a refusing gater")
		}
		a.rm.mu.Lock()
		n := len(a.rm.scopes)
		a.rm.mu.Unlock()
		if n != 0 {
			t.Errorf("listener opened %d scopes for a refused connection", n)
		}
		if err := b.rm.allDone(5 * time.Second); err != nil {
			t.Errorf("dialer: %v", err)
		}
	})
	t.Run("gater refuses secured", func(t *testing.T) {
		a := newRuledEnd(t, &countingRcmgr{}, &testGater{refuseSecured: true})
		b := newRuledEnd(t, &countingRcmgr{}, nil)
		d, err, acc := dialOnce(t, a, b, a.id)
		if acc != nil {
			t.Fatal("listener accepted a connection its gater refused")
		}
		if err == nil {
			_ = d.Close()
		}
		for name, e := range map[string]ruledEnd{"listener": a, "dialer": b} {
			if err := e.rm.allDone(5 * time.Second); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
	t.Run("rcmgr refuses", func(t *testing.T) {
		a := newRuledEnd(t, &countingRcmgr{}, nil)
		b := newRuledEnd(t, &countingRcmgr{refuseOpen: true}, nil)
		if _, err, _ := dialOnce(t, a, b, a.id); err == nil {
			t.Fatal("dial succeeded though OpenConnection failed")
		}
		b2 := newRuledEnd(t, &countingRcmgr{refusePeer: a.id}, nil)
		if _, err, _ := dialOnce(t, a, b2, a.id); err == nil {
			t.Fatal("dial succeeded though SetPeer failed")
		}
		if err := b2.rm.allDone(time.Second); err != nil {
			t.Errorf("dialer: %v", err)
		}
	})
}

// Keys of every type go-libp2p and Concord share convert through their
// protobuf form with the same peer ID.
func TestConcordKey(t *testing.T) {
	for _, typ := range []int{lcrypto.Ed25519, lcrypto.Secp256k1, lcrypto.ECDSA, lcrypto.RSA} {
		k, _, err := lcrypto.GenerateKeyPair(typ, 2048)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := lpeer.IDFromPrivateKey(k)
		ck, err := ConcordKey(k)
		if err != nil {
			t.Fatalf("type %d: %v", typ, err)
		}
		got, err := peer.IDFromPrivateKey(ck)
		if err != nil || string(got) != string(want) {
			t.Errorf("type %d: Concord peer ID %s (%v), go-libp2p %s", typ, got, err, want)
		}
	}
}

// Listen and Dial take /ip6 as well as /ip4; CanDial refuses what is not
// IP and TCP.
func TestAddresses(t *testing.T) {
	a, ida := concordTransport(t)
	b, _ := concordTransport(t)
	l, err := a.Listen(ma.StringCast("/ip6/::1/tcp/0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer l.Close()
	acc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			_ = c.Close()
		}
		acc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := b.Dial(ctx, l.Multiaddr(), ida)
	if err != nil {
		t.Fatalf("dial %s: %v", l.Multiaddr(), err)
	}
	if got := c.RemoteMultiaddr(); !got.Equal(l.Multiaddr()) {
		t.Errorf("RemoteMultiaddr %s, want %s", got, l.Multiaddr())
	}
	_ = c.Close()
	// Bounded: a full run once hung here for 18 min (an Accept that never
	// returned); a failure must say so instead.
	select {
	case err := <-acc:
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = l.Close()
		t.Fatalf("Accept did not return within 10 s of the dial to %s succeeding", l.Multiaddr())
	}
	for addr, want := range map[string]bool{
		"/ip4/1.2.3.4/tcp/1": true, "/ip6/::1/tcp/1": true,
		"/ip4/1.2.3.4/udp/1/quic-v1": false, "/dns4/example.com/tcp/1": false,
		"/ip4/1.2.3.4/tcp/1/ws": false,
	} {
		if got := a.CanDial(ma.StringCast(addr)); got != want {
			t.Errorf("CanDial(%s) = %v, want %v", addr, got, want)
		}
	}
	if _, err := a.Listen(ma.StringCast("/ip4/127.0.0.1/udp/0/quic-v1")); err == nil {
		t.Error("Listen on a QUIC address succeeded")
	}
}

// TestAcceptReturnsClosedConn: a connection its dialer closes right after
// the handshake is still returned by Accept (closed), never swallowed: a
// listener once lost such connections, and an Accept waited forever.
func TestAcceptReturnsClosedConn(t *testing.T) {
	a, ida := concordTransport(t)
	b, _ := concordTransport(t)
	l, err := a.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const rounds = 20
	accepted := make(chan error, rounds)
	go func() {
		for range rounds {
			c, err := l.Accept()
			if err == nil {
				_ = c.Close()
			}
			accepted <- err
		}
	}()
	for i := range rounds {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := b.Dial(ctx, l.Multiaddr(), ida)
		cancel()
		if err != nil {
			t.Fatalf("round %d: dial: %v", i, err)
		}
		_ = c.Close()
		select {
		case err := <-accepted:
			if err != nil {
				t.Fatalf("round %d: accept: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: Accept did not return within 5 s of the dial succeeding and closing", i)
		}
	}
}
