package upgrader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"

	"github.com/concordp2p/concord/network"
)

// transferSize is the size of each of the two transfers, one each way.
const transferSize = 64 << 20

// streamCount and streamSize: the concurrent-streams test opens
// streamCount streams, half from each side, each echoing streamSize bytes.
const (
	streamCount = 100
	streamSize  = 4 << 10
)

// directions names who dials, and says whether it is Concord.
var directions = []struct {
	name         string
	concordDials bool
}{
	{"ConcordDials", true},
	{"GoLibp2pDials", false},
}

// TestTransport runs Concord's upgrader against go-libp2p's TCP transport and
// upgrader with the muxer inlined, as go-libp2p hosts configure it: the
// upgrade result on both ends, 64 MiB each way, 100 concurrent streams and
// pings, for Noise and TLS, in both directions.
func TestTransport(t *testing.T) {
	for _, sp := range []secProto{secNoise, secTLS} {
		for _, d := range directions {
			t.Run(sp.String()+"/"+d.name, func(t *testing.T) {
				c := newConcordNode(t, sp)
				l := newLPNode(t, sp, true)
				p := connect(t, c, l, d.concordDials)
				ours, theirs := concordConn{p.ours}, lpConn{p.lp}
				oursSrv, theirsSrv := serve(t, ours), serve(t, theirs)

				checkUpgrade(t, p, c, l, sp, d.concordDials, true)
				t.Run("Transfer64MiB", func(t *testing.T) { testTransfer(t, ours, theirs, transferSize) })
				t.Run("ConcurrentStreams", func(t *testing.T) { testConcurrentStreams(t, ours, theirs) })
				t.Run("Ping", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					// libp2p's ping protocol each way, then the yamux ping.
					if err := runProto(ctx, theirs, pingProto, func(s stream) error { return pingOn(s, 5) }); err != nil {
						t.Errorf("go-libp2p pinging Concord: %v", err)
					}
					if err := runProto(ctx, ours, pingProto, func(s stream) error { return pingOn(s, 5) }); err != nil {
						t.Errorf("Concord pinging go-libp2p: %v", err)
					}
					if rtt, err := p.ours.Ping(ctx); err != nil || rtt <= 0 {
						t.Errorf("Concord yamux ping: got rtt %v, err %v; want rtt > 0, nil", rtt, err)
					}
				})
				for _, s := range []*server{oursSrv, theirsSrv} {
					for _, err := range s.failures() {
						t.Errorf("responder: %v", err)
					}
				}
			})
		}
	}
}

// TestUpgradeWithoutInlinedMuxer has go-libp2p offer no muxer in its
// security handshake, so yamux is negotiated with multistream-select over
// the secured connection; one echo each way proves the session works.
func TestUpgradeWithoutInlinedMuxer(t *testing.T) {
	for _, sp := range []secProto{secNoise, secTLS} {
		for _, d := range directions {
			t.Run(sp.String()+"/"+d.name, func(t *testing.T) {
				c := newConcordNode(t, sp)
				l := newLPNode(t, sp, false)
				p := connect(t, c, l, d.concordDials)
				ours, theirs := concordConn{p.ours}, lpConn{p.lp}
				serve(t, ours)
				serve(t, theirs)
				checkUpgrade(t, p, c, l, sp, d.concordDials, false)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				for name, mc := range map[string]muxedConn{"Concord": ours, "go-libp2p": theirs} {
					if err := runProto(ctx, mc, echoProto, func(s stream) error { return echoOn(s, 1000) }); err != nil {
						t.Errorf("%s opening an echo stream: %v", name, err)
					}
				}
			})
		}
	}
}

// checkUpgrade compares what both ends say about the connection with what
// the configuration implies.
func checkUpgrade(t *testing.T, p pair, c *concordNode, l *lpNode, sp secProto, concordDials, inlined bool) {
	t.Helper()
	if got, want := p.ours.RemotePeer(), l.ident.id; got != want {
		t.Errorf("Concord RemotePeer: got %s, want %s", got, want)
	}
	if got, want := p.ours.LocalPeer(), c.ident.id; got != want {
		t.Errorf("Concord LocalPeer: got %s, want %s", got, want)
	}
	if got, want := p.lp.RemotePeer(), lppeer.ID(c.ident.id); got != want {
		t.Errorf("go-libp2p RemotePeer: got %s, want %s", got, want)
	}
	if got, want := p.lp.LocalPeer(), lppeer.ID(l.ident.id); got != want {
		t.Errorf("go-libp2p LocalPeer: got %s, want %s", got, want)
	}
	if pk := p.ours.RemotePublicKey(); pk == nil || !pk.Equal(l.ident.ours.Public()) {
		t.Errorf("Concord RemotePublicKey: got %v, want go-libp2p's key", pk)
	}

	wantDir, wantRole := network.DirInbound, network.RoleResponder
	if concordDials {
		wantDir, wantRole = network.DirOutbound, network.RoleInitiator
	}
	if got := p.ours.Direction(); got != wantDir {
		t.Errorf("Concord Direction: got %v, want %v", got, wantDir)
	}
	if got := p.ours.Role(); got != wantRole {
		t.Errorf("Concord Role: got %v, want %v", got, wantRole)
	}
	if e := p.ours.Election(); e != nil {
		t.Errorf("Concord Election: got %+v, want nil (a single dialer)", e)
	}

	if got, want := p.ours.Security(), sp.id(); got != want {
		t.Errorf("Concord Security: got %q, want %q", got, want)
	}
	if got, want := string(p.lp.ConnState().Security), sp.id(); got != want {
		t.Errorf("go-libp2p Security: got %q, want %q", got, want)
	}
	if got, want := p.ours.Muxer(), lpyamux.ID; got != want {
		t.Errorf("Concord Muxer: got %q, want %q", got, want)
	}
	if got, want := p.lp.ConnState().StreamMultiplexer, protocol.ID(lpyamux.ID); got != want {
		t.Errorf("go-libp2p StreamMultiplexer: got %q, want %q", got, want)
	}
	if got := p.ours.MuxerInlined(); got != inlined {
		t.Errorf("Concord MuxerInlined: got %v, want %v", got, inlined)
	}
	if got := p.lp.ConnState().UsedEarlyMuxerNegotiation; got != inlined {
		t.Errorf("go-libp2p UsedEarlyMuxerNegotiation: got %v, want %v", got, inlined)
	}

	if got, want := p.ours.RemoteMultiaddr().String(), p.lp.LocalMultiaddr().String(); got != want {
		t.Errorf("Concord RemoteMultiaddr: got %s, want go-libp2p's local address %s", got, want)
	}
	if got, want := p.lp.RemoteMultiaddr().String(), p.ours.LocalMultiaddr().String(); got != want {
		t.Errorf("go-libp2p RemoteMultiaddr: got %s, want Concord's local address %s", got, want)
	}
}

// testTransfer sends size bytes each way at once on two sink streams, one
// opened by each side, and checks both digests.
func testTransfer(t *testing.T, ours, theirs muxedConn, size int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i, side := range []struct {
		name string
		c    muxedConn
	}{{"Concord to go-libp2p", ours}, {"go-libp2p to Concord", theirs}} {
		wg.Go(func() {
			start := time.Now()
			err := runProto(ctx, side.c, sinkProto, func(s stream) error { return sinkOn(s, size, uint64(i)) })
			if err != nil {
				t.Errorf("%s: %v", side.name, err)
				return
			}
			t.Logf("%s: %d MiB in %v", side.name, size>>20, time.Since(start).Round(time.Millisecond))
		})
	}
	wg.Wait()
}

// testConcurrentStreams opens streamCount echo streams at once, half from
// each side, each echoing streamSize bytes.
func testConcurrentStreams(t *testing.T, ours, theirs muxedConn) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, streamCount)
	for i := range streamCount {
		c, name := ours, "Concord"
		if i%2 == 1 {
			c, name = theirs, "go-libp2p"
		}
		wg.Go(func() {
			if err := runProto(ctx, c, echoProto, func(s stream) error { return echoOn(s, streamSize) }); err != nil {
				errs <- fmt.Errorf("stream %d opened by %s: %w", i, name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
