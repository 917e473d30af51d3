package upgrader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/transport/tcp"
)

// securityStack names one way of building the security transports.
type securityStack struct {
	name  string
	build func(t testing.TB, k peer.PrivKey) []security.Transport
}

func noiseStack(inlined bool) securityStack {
	name := "noise/multistream-muxer"
	if inlined {
		name = "noise/inlined-muxer"
	}
	return securityStack{name: name, build: func(t testing.TB, k peer.PrivKey) []security.Transport {
		n, err := noise.New(k, noise.Config{})
		if err != nil {
			t.Fatal(err)
		}
		if inlined {
			return []security.Transport{n}
		}
		return []security.Transport{stripMuxers{n}}
	}}
}

// stacks are every security × muxer-negotiation combination the upgrader
// supports; real-socket tests run each.
func stacks() []securityStack {
	return append([]securityStack{noiseStack(true), noiseStack(false)}, tlsStacks()...)
}

// netnsPeer is one Concord peer in a namespace: a transport with a
// listener (whose port the dial uses) and an upgrader.
type netnsPeer struct {
	host *netlab.Host
	tr   *tcp.Transport
	l    *tcp.Listener
	u    *Upgrader
	addr ma.Multiaddr // where the other side dials it
}

func newNetnsPeer(t *testing.T, h *netlab.Host, port int, sec securityStack) *netnsPeer {
	t.Helper()
	k := newKey(t)
	p := &netnsPeer{host: h, tr: tcp.New(tcp.Config{})}
	p.u = newUpgrader(t, Config{Identity: k, Security: SecurityConfig{Transports: sec.build(t, k)}})
	err := h.Do(func() error {
		var err error
		p.l, err = p.tr.Listen(context.Background(), ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port)))
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", h.Name, err)
	}
	t.Cleanup(func() { _ = p.l.Close() })
	p.addr = ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", h.Addr, port))
	return p
}

// TestUpgradeRealSimultaneousOpen forces a real TCP simultaneous open
// between two namespaces (both sides dial from their listen ports, so the
// kernel produces ONE connection on which both ends dialed) and upgrades
// it with every security stack: exactly one initiator each time, streams
// both ways, and neither listener accepted anything.
func TestUpgradeRealSimultaneousOpen(t *testing.T) {
	pair := netlab.NewPair(t)
	const runsPerStack = 3
	port := 41000
	for _, sec := range stacks() {
		t.Run(sec.name, func(t *testing.T) {
			for run := range runsPerStack {
				port += 2
				a := newNetnsPeer(t, pair.A, port, sec)
				b := newNetnsPeer(t, pair.B, port+1, sec)
				var ca, cb *tcp.Conn
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				err := pair.SimultaneousOpen(ctx,
					func(ctx context.Context) (err error) { ca, err = a.tr.Dial(ctx, b.addr); return err },
					func(ctx context.Context) (err error) { cb, err = b.tr.Dial(ctx, a.addr); return err })
				if err != nil {
					cancel()
					t.Fatalf("run %d: simultaneous open: %v", run, err)
				}
				if !ca.Info().FromListenPort || !cb.Info().FromListenPort {
					t.Fatalf("run %d: dials not from the listen ports: %+v %+v", run, ca.Info(), cb.Info())
				}
				var ra, rb upgradeResult
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); ra.c, ra.err = a.u.Upgrade(ctx, ca, network.DirOutbound, b.u.LocalPeer()) }()
				go func() { defer wg.Done(); rb.c, rb.err = b.u.Upgrade(ctx, cb, network.DirOutbound, a.u.LocalPeer()) }()
				wg.Wait()
				cancel()
				if ra.err != nil || rb.err != nil {
					closeAll(ra, rb)
					t.Fatalf("run %d: upgrade: A %v, B %v", run, ra.err, rb.err)
				}
				if ra.c.Role() == rb.c.Role() {
					closeAll(ra, rb)
					t.Fatalf("run %d: both ends are %v", run, ra.c.Role())
				}
				if ra.c.Election() == nil || rb.c.Election() == nil {
					t.Errorf("run %d: no election on a simultaneous open", run)
				}
				checkEcho(t, ra.c, rb.c, "A to B over one simultaneous-open connection")
				checkEcho(t, rb.c, ra.c, "B to A")
				closeAll(ra, rb)
				for _, p := range []*netnsPeer{a, b} {
					_ = p.l.SetDeadline(time.Now().Add(time.Millisecond))
					if c, err := p.l.Accept(); err == nil {
						_ = c.Close()
						t.Errorf("run %d: listener in %s accepted a connection; a simultaneous open has none", run, p.host.Name)
					}
				}
			}
		})
	}
}

// TestUpgradeLoopbackTCP upgrades single dials over loopback TCP through
// the Listener, with every security stack, both ways.
func TestUpgradeLoopbackTCP(t *testing.T) {
	for _, sec := range stacks() {
		t.Run(sec.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ka, kb := newKey(t), newKey(t)
			ua := newUpgrader(t, Config{Identity: ka, Security: SecurityConfig{Transports: sec.build(t, ka)}})
			ub := newUpgrader(t, Config{Identity: kb, Security: SecurityConfig{Transports: sec.build(t, kb)}})
			tr := tcp.New(tcp.Config{})
			tl, err := tr.Listen(ctx, ma.StringCast("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				t.Fatal(err)
			}
			l := ub.Listen(tl)
			defer l.Close()
			raw, err := tcp.New(tcp.Config{}).Dial(ctx, l.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			ca, err := ua.Upgrade(ctx, raw, network.DirOutbound, ub.LocalPeer())
			if err != nil {
				t.Fatalf("dialer upgrade: %v", err)
			}
			defer ca.Close()
			cb, err := l.Accept(ctx)
			if err != nil {
				t.Fatalf("accept: %v", err)
			}
			defer cb.Close()
			if ca.RemoteMultiaddr() == nil || !ca.RemoteMultiaddr().Equal(l.Multiaddr()) {
				t.Errorf("dialer's remote multiaddr %v, want %v", ca.RemoteMultiaddr(), l.Multiaddr())
			}
			if ca.Role() != network.RoleInitiator || cb.Role() != network.RoleResponder {
				t.Errorf("roles %v/%v, want initiator/responder", ca.Role(), cb.Role())
			}
			checkEcho(t, ca, cb, "dialer to listener over TCP")
			checkEcho(t, cb, ca, "listener to dialer over TCP")
		})
	}
}
