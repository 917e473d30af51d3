package upgrader

import (
	"context"
	"errors"
	"net"
	"testing"

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
