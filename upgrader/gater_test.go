package upgrader

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
)

// hookGater refuses at one chosen hook and records what each hook saw.
type hookGater struct {
	refuseAt  Stage
	secured   peer.ID
	upgraded  *Conn
	acceptSaw net.Addr
}

var errRefusedByTest = errors.New("refused by the test's gater")

func (g *hookGater) InterceptAccept(a net.Addr) error {
	g.acceptSaw = a
	if g.refuseAt == StageAdmission {
		return errRefusedByTest
	}
	return nil
}

func (g *hookGater) InterceptSecured(_ network.Direction, p peer.ID, _ net.Addr) error {
	g.secured = p
	if g.refuseAt == StageSecurity {
		return errRefusedByTest
	}
	return nil
}

func (g *hookGater) InterceptUpgraded(c *Conn) error {
	g.upgraded = c
	if g.refuseAt == StageMuxer {
		return errRefusedByTest
	}
	return nil
}

func TestGaterHooks(t *testing.T) {
	for _, stage := range []Stage{StageSecurity, StageMuxer, 0} {
		name := "no refusal"
		if stage != 0 {
			name = "refuse at " + stage.String()
		}
		t.Run(name, func(t *testing.T) {
			g := &hookGater{refuseAt: stage}
			ua, ub := newUpgrader(t, Config{Gater: g}), newUpgrader(t, Config{})
			ca, cb := pipe(0)
			ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
			defer closeAll(ra, rb)
			if g.secured != ub.LocalPeer() {
				t.Errorf("InterceptSecured saw %q, want the authenticated peer %s", g.secured, ub.LocalPeer())
			}
			if stage == 0 {
				if ra.err != nil || g.upgraded != ra.c {
					t.Fatalf("no refusal: err %v, InterceptUpgraded saw %p, want %p", ra.err, g.upgraded, ra.c)
				}
				return
			}
			mustStage(t, ra.err, stage, ErrGated)
			if !errors.Is(ra.err, errRefusedByTest) {
				t.Errorf("error %v does not carry the gater's reason", ra.err)
			}
			if (stage == StageMuxer) != (g.upgraded != nil) {
				t.Errorf("InterceptUpgraded called = %v at stage %v", g.upgraded != nil, stage)
			}
		})
	}
}

// rawGater records the raw connection InterceptSecuredRaw saw; it must not
// be asked InterceptSecured.
type rawGater struct {
	hookGater
	raw     net.Conn
	dir     network.Direction
	remote  peer.ID
	refuse  bool
	classic bool          // InterceptSecured was called
	seen    chan struct{} // if not nil, closed once InterceptSecuredRaw has recorded
}

func (g *rawGater) InterceptSecured(network.Direction, peer.ID, net.Addr) error {
	g.classic = true
	return nil
}

func (g *rawGater) InterceptSecuredRaw(raw net.Conn, dir network.Direction, remote peer.ID) error {
	g.raw, g.dir, g.remote = raw, dir, remote
	if g.seen != nil {
		close(g.seen)
	}
	if g.refuse {
		return errRefusedByTest
	}
	return nil
}

func TestRawConnGater(t *testing.T) {
	t.Run("upgrade", func(t *testing.T) {
		g := &rawGater{}
		ua, ub := newUpgrader(t, Config{Gater: g}), newUpgrader(t, Config{})
		ca, cb := pipe(0)
		ra, rb := upgradePair(context.Background(), ua, ub, ca, cb, network.DirOutbound, network.DirInbound, ub.LocalPeer(), "")
		defer closeAll(ra, rb)
		if ra.err != nil || rb.err != nil {
			t.Fatalf("upgrade: %v, %v", ra.err, rb.err)
		}
		if g.raw != ca || g.dir != network.DirOutbound || g.remote != ub.LocalPeer() || g.classic {
			t.Errorf("InterceptSecuredRaw saw (%v, %v, %s), InterceptSecured called %v; want the conn given to Upgrade, outbound, %s, false",
				g.raw, g.dir, g.remote, g.classic, ub.LocalPeer())
		}
	})
	t.Run("listener", func(t *testing.T) {
		g := &rawGater{refuse: true, seen: make(chan struct{})}
		ub := newUpgrader(t, Config{Gater: g})
		ml := newMemListener()
		l := ub.ListenRaw(ml)
		defer l.Close()
		ua := newUpgrader(t, Config{})
		a, b := pipe(0)
		given := ipConn{Conn: b, remote: &net.TCPAddr{IP: net.ParseIP("10.1.0.1"), Port: 4000}}
		ml.conns <- given
		_, err := ua.Upgrade(context.Background(), a, network.DirOutbound, ub.LocalPeer())
		_ = err // the dialer may finish before the refusal reaches it
		select {
		case <-g.seen:
		case <-time.After(5 * time.Second):
			t.Fatal("InterceptSecuredRaw was not called")
		}
		if g.raw != given || g.dir != network.DirInbound || g.remote != ua.LocalPeer() {
			t.Errorf("InterceptSecuredRaw saw (%v, %v, %s); want the RawListener's conn, inbound, %s", g.raw, g.dir, g.remote, ua.LocalPeer())
		}
	})
}
