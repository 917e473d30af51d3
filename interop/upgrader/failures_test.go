package upgrader

import (
	"context"
	"errors"
	"testing"
	"time"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpsec "github.com/libp2p/go-libp2p/core/sec"
	mss "github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/network"
	cupgrader "github.com/concordp2p/concord/upgrader"
)

// TestUpgradeFailures checks that the upgrades that must fail against
// go-libp2p do, on both ends, with Concord's typed errors naming the stage:
// a dialer expecting another peer ID, and no security protocol in common.
func TestUpgradeFailures(t *testing.T) {
	t.Run("ConcordExpectsAnotherPeer", func(t *testing.T) {
		c := newConcordNode(t, secNoise)
		l := newLPNode(t, secNoise, true)
		other := newIdentity(t)
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		accepted := make(chan error, 1)
		go func() {
			lc, err := l.ln.Accept()
			if err == nil {
				lc.Close()
			}
			accepted <- err
		}()
		conn, err := c.dial(ctx, l.ln.Multiaddr(), other.id)
		if err == nil {
			conn.Close()
			t.Fatal("Concord dialing go-libp2p with the wrong expected peer: got a connection, want ErrPeerIDMismatch")
		}
		checkStageErr(t, err, cupgrader.StageSecurity, cupgrader.ErrPeerIDMismatch)
		l.ln.Close() // go-libp2p's listener drops the failed upgrade silently
		<-accepted
	})
	t.Run("GoLibp2pExpectsAnotherPeer", func(t *testing.T) {
		c := newConcordNode(t, secNoise)
		l := newLPNode(t, secNoise, true)
		other := newIdentity(t)
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		lc, err := l.tr.Dial(ctx, c.ln.Multiaddr(), lppeer.ID(other.id))
		if err == nil {
			lc.Close()
			t.Fatal("go-libp2p dialing Concord with the wrong expected peer: got a connection, want an error")
		}
		var mm lpsec.ErrPeerIDMismatch
		if !errors.As(err, &mm) || mm.Actual != c.ident.lpID() || mm.Expected != lppeer.ID(other.id) {
			t.Errorf("go-libp2p's dial error: got %v, want its ErrPeerIDMismatch{Expected: %s, Actual: %s}", err, other.id, c.ident.id)
		}
		// go-libp2p aborts after learning Concord's identity; Concord's
		// listener sees the responder's handshake fail.
		f := nextFinished(t, c)
		if f.Err == nil {
			t.Fatalf("Concord's inbound upgrade: got success, want a failure (go-libp2p said %v)", err)
		}
		if f.Direction != network.DirInbound {
			t.Errorf("failed upgrade direction: got %v, want %v", f.Direction, network.DirInbound)
		}
	})
	for _, d := range directions {
		t.Run("NoCommonSecurity/"+d.name, func(t *testing.T) {
			c := newConcordNode(t, secNoise)
			l := newLPNode(t, secTLS, true)
			ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
			defer cancel()
			if d.concordDials {
				accepted := make(chan struct{})
				go func() {
					defer close(accepted)
					if lc, err := l.ln.Accept(); err == nil {
						lc.Close()
					}
				}()
				conn, err := c.dial(ctx, l.ln.Multiaddr(), l.ident.id)
				l.ln.Close()
				<-accepted
				if err == nil {
					conn.Close()
					t.Fatal("Concord (Noise only) dialing go-libp2p (TLS only): got a connection, want ErrNoCommonProtocol")
				}
				checkStageErr(t, err, cupgrader.StageSimopen, cupgrader.ErrNoCommonProtocol)
				return
			}
			lc, err := l.tr.Dial(ctx, c.ln.Multiaddr(), c.ident.lpID())
			if err == nil {
				lc.Close()
				t.Fatal("go-libp2p (TLS only) dialing Concord (Noise only): got a connection, want an error")
			}
			if !errors.Is(err, mss.ErrNotSupported[protocol.ID]{}) {
				t.Errorf("go-libp2p's dial error: got %v, want multistream's ErrNotSupported (Concord answered na)", err)
			}
			// go-libp2p hangs up after Concord's na (with a reset: it sets
			// SO_LINGER 0), so Concord's responder cannot tell that no
			// other proposal would have come: it reports the read error,
			// in the simopen stage.
			f := nextFinished(t, c)
			var ue *cupgrader.Error
			if !errors.As(f.Err, &ue) || ue.Stage != cupgrader.StageSimopen {
				t.Errorf("Concord's inbound upgrade: got error %v, want an *upgrader.Error in stage %v", f.Err, cupgrader.StageSimopen)
			}
		})
	}
}

// checkStageErr checks that err is an *upgrader.Error of stage and matches
// the sentinel want.
func checkStageErr(t *testing.T, err error, stage cupgrader.Stage, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("error: got %v, want one matching %v", err, want)
	}
	var ue *cupgrader.Error
	if !errors.As(err, &ue) {
		t.Fatalf("error: got %T (%v), want *upgrader.Error", err, err)
	}
	if ue.Stage != stage {
		t.Errorf("failed stage: got %v, want %v", ue.Stage, stage)
	}
}

// nextFinished waits for the Concord node's next UpgradeFinished event.
func nextFinished(t *testing.T, c *concordNode) cupgrader.UpgradeFinished {
	t.Helper()
	select {
	case f := <-c.finished:
		return f
	case <-time.After(setupTimeout):
		t.Fatal("no UpgradeFinished event from Concord")
		return cupgrader.UpgradeFinished{}
	}
}
