package upgrader

import (
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/transport/tcp"
)

// evilPeer plays the listening side honestly up to a stage and then
// trickles one byte a second (or, with trickle false, goes silent).
type evilPeer struct {
	stopAfter Stage
	trickle   bool
}

func (e evilPeer) run(t *testing.T, c net.Conn) {
	defer c.Close()
	k := newKey(t)
	// stall goes silent, or trickles a well-formed but never-finished
	// message: the length prefix the next stage expects, announcing 127
	// bytes, then one byte a second.
	stall := func(prefix ...byte) {
		if !e.trickle {
			silentPeer(c)
			return
		}
		go silentPeer(c)
		msg := append(prefix, make([]byte, 60)...)
		for i := range msg {
			if _, err := c.Write(msg[i : i+1]); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}
	if e.stopAfter == StageAdmission {
		stall(0x7f) // a multistream token of 127 bytes
		return
	}
	ctx := context.Background()
	res, sc, err := simopen.Accept(ctx, c, simopen.Config{Protocols: []string{"/noise"}})
	if err != nil {
		return
	}
	if e.stopAfter == StageSimopen {
		stall(0x00, 0x7f) // a Noise message of 127 bytes
		return
	}
	n, _ := noise.New(k, noise.Config{})
	// No muxers offered: the dialer must negotiate the muxer with
	// multistream-select, which this peer never answers.
	secured, err := n.Handshake(ctx, sc, security.Params{Role: res.Role})
	if err != nil {
		return
	}
	defer secured.Close()
	c = secured
	stall(0x7f) // a multistream token of 127 bytes, inside Noise frames
}

// TestSlowlorisEachStage: a peer that stalls after each stage, silent or
// trickling a byte a second, fails the upgrade exactly at the deadline
// with the next stage named.
func TestSlowlorisEachStage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		stopAfter Stage
		want      Stage
	}{
		{"before simopen", StageAdmission, StageSimopen},
		{"after simopen", StageSimopen, StageSecurity},
		{"after security", StageSecurity, StageMuxer},
	} {
		for _, trickle := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/silent", true: "/trickle"}[trickle]
			t.Run(name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					u := newUpgrader(t, Config{HandshakeTimeout: 5 * time.Second})
					ca, cb := pipe(time.Millisecond)
					done := make(chan struct{})
					go func() { defer close(done); evilPeer{tc.stopAfter, trickle}.run(t, cb) }()
					start := time.Now()
					c, err := u.Upgrade(context.Background(), ca, network.DirOutbound, "")
					if err == nil {
						_ = c.Close()
						t.Fatal("upgrade against a stalling peer succeeded")
					}
					if got := time.Since(start); got != 5*time.Second {
						t.Errorf("upgrade ended after %v, want exactly 5s", got)
					}
					mustStage(t, err, tc.want, ErrHandshakeTimeout)
					_ = ca.Close()
					<-done
				})
			})
		}
	}
}

// TestSlowlorisRealSockets: the same over loopback TCP, once, through a
// Listener: a second connection from the address displaces the first, the
// stalled inbound upgrade ends at the deadline, its admission slot is
// released, and an honest dialer is served then.
func TestSlowlorisRealSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const timeout = 300 * time.Millisecond
	ub := newUpgrader(t, Config{HandshakeTimeout: timeout, MaxInboundUpgradesPerIP: 1})
	tl, err := tcp.New(tcp.Config{}).Listen(ctx, ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	l := ub.Listen(tl)
	defer l.Close()
	dialer := tcp.New(tcp.Config{DisableReuse: true})

	// A silent connection takes the only per-IP slot...
	silent, err := dialer.Dial(ctx, l.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, func() bool { return l.Stats().InFlight == 1 }, "the silent upgrade to start")
	// ...so a second one from the same address waits on probation, and
	// displaces no one while it says nothing.
	second, err := dialer.Dial(ctx, l.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	waitFor(t, func() bool { return l.Stats().OnProbation == 1 }, "the second silent connection on probation")
	// An honest peer from the address speaks and displaces the first
	// silent one, which is closed (after the responder's header).
	ua := newUpgrader(t, Config{})
	raw, err := dialer.Dial(ctx, l.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ua.Upgrade(ctx, raw, network.DirOutbound, ub.LocalPeer())
	if err != nil {
		t.Fatalf("honest upgrade during the slowloris: %v", err)
	}
	defer ca.Close()
	cb, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	_ = silent.SetReadDeadline(time.Now().Add(timeout / 2))
	if _, err := io.ReadAll(silent); err != nil {
		t.Errorf("displaced conn: read = %v, want EOF before the deadline", err)
	}
	// The second one is cut at the deadline and its place released.
	waitFor(t, func() bool { s := l.Stats(); return s.InFlight == 0 && s.OnProbation == 0 && s.Failed == 2 }, "the silent upgrades to fail")
	if s := l.Stats(); s.Evicted != 1 || s.RefusedPerIP != 0 || s.Upgraded != 1 {
		t.Errorf("stats = %+v, want 1 evicted, none refused and 1 upgraded", s)
	}
}

// waitFor polls cond on real time, bounded to 5 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
