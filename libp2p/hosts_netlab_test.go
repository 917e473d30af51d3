package concordlibp2p

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lhost "github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
)

// nsTransport runs a transport's Listen and Dial inside a netlab
// namespace, so that a go-libp2p host in this process has its sockets
// there: the swarm dials from goroutines of its own, which Do moves into
// the namespace for the one call that creates the socket.
type nsTransport struct {
	transport.Transport
	ns *netlab.Host
}

func (t *nsTransport) Listen(a ma.Multiaddr) (transport.Listener, error) {
	var l transport.Listener
	err := t.ns.Do(func() error {
		var err error
		l, err = t.Transport.Listen(a)
		return err
	})
	return l, err
}

func (t *nsTransport) Dial(ctx context.Context, a ma.Multiaddr, p lpeer.ID) (transport.CapableConn, error) {
	var c transport.CapableConn
	err := t.ns.Do(func() error {
		var err error
		c, err = t.Transport.Dial(ctx, a, p)
		return err
	})
	return c, err
}

// nsHost is a go-libp2p host whose TCP transport (Concord's or stock)
// lives in ns, listening on 0.0.0.0:port, serving an echo protocol.
func nsHost(t *testing.T, ns *netlab.Host, concord bool, port int) (lhost.Host, lpeer.AddrInfo) {
	t.Helper()
	k, id := newKey(t)
	var tpt libp2p.Option
	if concord {
		tpt = libp2p.Transport(func(key lcrypto.PrivKey, g connmgr.ConnectionGater, rm lnetwork.ResourceManager) (*nsTransport, error) {
			inner, err := NewTransport(key, g, rm)
			return &nsTransport{inner, ns}, err
		})
	} else {
		tpt = libp2p.Transport(func(u transport.Upgrader, rm lnetwork.ResourceManager) (*nsTransport, error) {
			inner, err := libp2ptcp.NewTCPTransport(u, rm, nil)
			return &nsTransport{inner, ns}, err
		})
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port)),
		tpt,
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler(echoID, func(s lnetwork.Stream) {
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
	// The host's own address list comes from the root namespace's
	// interfaces; the peer is told the namespace's address.
	return h, lpeer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", ns.Addr, port))}}
}

// hostEcho opens an echo stream from a to b and checks one message.
func hostEcho(a lhost.Host, b lpeer.ID, msg string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := a.NewStream(ctx, b, echoID)
	if err != nil {
		return err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.Write([]byte(msg)); err != nil {
		return err
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(s)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

type connectResult struct {
	err error
	d   time.Duration
}

// crossConnect has the two hosts Connect to each other at once, their
// SYNs crossing in a real TCP simultaneous open.
func crossConnect(t *testing.T, p *netlab.Pair, ha, hb lhost.Host, ia, ib lpeer.AddrInfo) (ra, rb connectResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(h lhost.Host, to lpeer.AddrInfo, out *connectResult) func(context.Context) error {
		return func(ctx context.Context) error {
			start := time.Now()
			out.err = h.Connect(ctx, to)
			out.d = time.Since(start)
			return nil
		}
	}
	if err := p.SimultaneousOpen(ctx, connect(ha, ib, &ra), connect(hb, ia, &rb)); err != nil {
		t.Fatalf("simultaneous open: %v", err)
	}
	return ra, rb
}

// TestHostsSimultaneousOpen: two go-libp2p v0.52 hosts Connect to each
// other at the same moment, in a real TCP simultaneous open. On the
// Concord transport both Connects succeed in every one of 20 runs, over
// one connection, with a stream both ways; on the stock transport what
// happens is logged; with one of each, both fail at once (no hang) and a
// retry connects.
func TestHostsSimultaneousOpen(t *testing.T) {
	p := netlab.NewPair(t)
	t.Run("concord", func(t *testing.T) {
		for i := range simopenRuns {
			port := 49000 + i
			ha, ia := nsHost(t, p.A, true, port)
			hb, ib := nsHost(t, p.B, true, port)
			ra, rb := crossConnect(t, p, ha, hb, ia, ib)
			if ra.err != nil || rb.err != nil {
				t.Fatalf("run %d: Connect: a %v, b %v", i, ra.err, rb.err)
			}
			ca, cb := ha.Network().ConnsToPeer(ib.ID), hb.Network().ConnsToPeer(ia.ID)
			if len(ca) != 1 || len(cb) != 1 {
				t.Fatalf("run %d: %d and %d connections, want one each", i, len(ca), len(cb))
			}
			if ca[0].Stat().Direction != lnetwork.DirOutbound || cb[0].Stat().Direction != lnetwork.DirOutbound {
				t.Fatalf("run %d: directions %v %v: not a simultaneous open", i, ca[0].Stat().Direction, cb[0].Stat().Direction)
			}
			if err := hostEcho(ha, ib.ID, "a to b"); err != nil {
				t.Fatalf("run %d: stream a to b: %v", i, err)
			}
			if err := hostEcho(hb, ia.ID, "b to a"); err != nil {
				t.Fatalf("run %d: stream b to a: %v", i, err)
			}
			_ = ha.Close()
			_ = hb.Close()
		}
		t.Logf("Concord transport: %d of %d host simultaneous opens, both Connects succeeded, one connection, streams both ways", simopenRuns, simopenRuns)
	})
	t.Run("stock", func(t *testing.T) {
		const runs = 5
		failedBoth := 0
		for i := range runs {
			port := 49100 + i
			ha, ia := nsHost(t, p.A, false, port)
			hb, ib := nsHost(t, p.B, false, port)
			ra, rb := crossConnect(t, p, ha, hb, ia, ib)
			t.Logf("run %d: a after %v: %v; b after %v: %v", i, ra.d.Round(time.Millisecond), errOrOK(ra.err), rb.d.Round(time.Millisecond), errOrOK(rb.err))
			if ra.err != nil && rb.err != nil {
				failedBoth++
			}
			_ = ha.Close()
			_ = hb.Close()
		}
		t.Logf("stock go-libp2p v0.52.0 TCP: %d of %d host simultaneous opens, both Connects failed", failedBoth, runs)
	})
	t.Run("mixed", func(t *testing.T) {
		for i, concordIsA := range []bool{true, false} {
			port := 49200 + i
			ha, ia := nsHost(t, p.A, concordIsA, port)
			hb, ib := nsHost(t, p.B, !concordIsA, port)
			ra, rb := crossConnect(t, p, ha, hb, ia, ib)
			t.Logf("run %d (concord on %s): a after %v: %v; b after %v: %v", i, map[bool]string{true: "a", false: "b"}[concordIsA],
				ra.d.Round(time.Millisecond), errOrOK(ra.err), rb.d.Round(time.Millisecond), errOrOK(rb.err))
			for _, r := range []connectResult{ra, rb} {
				if r.err != nil && r.d > 12*time.Second { // 10 s handshake deadline plus the ~1 s SYN retransmission
					t.Errorf("run %d: a Connect failed only after %v", i, r.d)
				}
			}
			// The retry: a dials again, alone, past the swarm's backoff.
			ha.Network().(*swarm.Swarm).Backoff().Clear(ib.ID)
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			err := ha.Connect(ctx, ib)
			cancel()
			if err != nil {
				t.Fatalf("run %d: retry: %v", i, err)
			}
			if err := hostEcho(ha, ib.ID, "after the retry"); err != nil {
				t.Fatalf("run %d: stream after the retry: %v", i, err)
			}
			_ = ha.Close()
			_ = hb.Close()
		}
	})
}
