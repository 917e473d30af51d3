package simopen

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/network"
)

// crossDial makes one TCP simultaneous open between the pair's hosts, each
// dialing from port to the other's port (no listener is involved), and
// returns A's and B's ends.
func crossDial(t *testing.T, p *netlab.Pair, port uint16) (ca, cb net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	dial := func(from, to netip.Addr, out *net.Conn) func(context.Context) error {
		return func(ctx context.Context) error {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, port))}
			c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(to, port).String())
			*out = c
			return err
		}
	}
	err := p.SimultaneousOpen(ctx, dial(p.A.Addr, p.B.Addr, &ca), dial(p.B.Addr, p.A.Addr, &cb))
	if err != nil {
		if ca != nil {
			ca.Close()
		}
		if cb != nil {
			cb.Close()
		}
		t.Fatalf("simultaneous open on port %d: %v", port, err)
	}
	return ca, cb
}

// TestRealSimultaneousOpen: two Concord dialers on the two ends of real TCP
// simultaneous opens (network namespaces, kernel TCP), 20 times: every run
// ends with exactly one initiator, the same protocol on both ends, and a
// working stub handshake. Each run costs about one second (the SYN RTO).
func TestRealSimultaneousOpen(t *testing.T) {
	p := netlab.NewPair(t)
	const runs = 20
	var pipelined, ties int
	for i := range runs {
		ca, cb := crossDial(t, p, uint16(41000+i))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cfgA := Config{Protocols: []string{"/noise", "/tls/1.0.0"}, LocalPeer: peerA, RemotePeer: peerB}
		cfgB := Config{Protocols: []string{"/noise", "/tls/1.0.0"}, LocalPeer: peerB, RemotePeer: peerA}
		if i%2 == 1 {
			cfgB.Protocols = []string{"/tls/1.0.0", "/noise"} // the election without pipelining
		}
		if i == runs-1 {
			cfgA.Rand, cfgB.Rand = nonce(42), nonce(42) // a tie, broken by peer ID
		}
		a, b := runConns(ctx, ca, cb, dialer(cfgA), dialer(cfgB))
		cancel()
		ca.Close()
		cb.Close()
		if a.err != nil || b.err != nil || a.herr != nil || b.herr != nil {
			t.Fatalf("run %d: a %v / %v, b %v / %v", i, a.err, a.herr, b.err, b.herr)
		}
		if a.res.Role == b.res.Role || a.res.Role == network.RoleUnknown || b.res.Role == network.RoleUnknown {
			t.Fatalf("run %d: roles %v and %v, want exactly one initiator", i, a.res.Role, b.res.Role)
		}
		if a.res.Protocol != b.res.Protocol || a.res.Election == nil {
			t.Fatalf("run %d: protocols %q and %q, election %+v", i, a.res.Protocol, b.res.Protocol, a.res.Election)
		}
		if a.res.Pipelined || b.res.Pipelined {
			pipelined++
		}
		if a.res.Election.TieBreak {
			ties++
		}
	}
	if pipelined != runs/2 || ties != 1 {
		t.Errorf("%d pipelined elections and %d tie-breaks in %d runs, want %d and 1", pipelined, ties, runs, runs/2)
	}
}
