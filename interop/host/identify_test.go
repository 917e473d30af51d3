package host

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	chost "github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// identifyEvents subscribes to lh's identify outcomes before anything
// connects, so that none is missed.
type identifyEvents struct {
	sub event.Subscription
}

func subscribeIdentify(t *testing.T, lh lphost.Host) *identifyEvents {
	t.Helper()
	sub, err := lh.EventBus().Subscribe([]any{
		new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerIdentificationFailed), new(event.EvtPeerProtocolsUpdated),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return &identifyEvents{sub: sub}
}

// next waits for the next event about p that match accepts, failing on an
// identification failure for p.
func (e *identifyEvents) next(t *testing.T, p lppeer.ID, match func(any) bool) any {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-e.sub.Out():
			if f, ok := ev.(event.EvtPeerIdentificationFailed); ok && f.Peer == p {
				t.Fatalf("go-libp2p: identify of Concord failed: %v", f.Reason)
			}
			if match(ev) {
				return ev
			}
		case <-timeout:
			t.Fatal("go-libp2p: no identify event within 5 s")
		}
	}
}

func newLibp2pIdentify(t *testing.T, sec string) lphost.Host {
	t.Helper()
	opt := libp2p.Security(lpnoise.ID, lpnoise.New)
	if sec == chost.SecurityTLS {
		opt = libp2p.Security(lptls.ID, lptls.New)
	}
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		opt,
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.UserAgent("go-libp2p-interop/1"),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func sameAddrs(a, b []ma.Multiaddr) error {
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equal) {
			return fmt.Errorf("%v lacks %v", b, x)
		}
	}
	if len(a) != len(b) {
		return fmt.Errorf("%v and %v differ", a, b)
	}
	return nil
}

// TestIdentifyWithGoLibp2p: a stock go-libp2p host and a Concord host
// identify each other, whichever dials, with Noise and with TLS: go-libp2p's
// identify service completes (no failure event, which is what it logged as
// "identify FAILED" before), its peerstore holds Concord's agent,
// protocols, listen addresses and its certified (signed) record; Concord's
// connection holds go-libp2p's agent, protocols, listen addresses and a
// verified record. Then each side adds a protocol and the other learns it
// by push.
func TestIdentifyWithGoLibp2p(t *testing.T) {
	for _, sec := range []string{chost.SecurityNoise, chost.SecurityTLS} {
		for _, concordDials := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/concordDials=%v", sec, concordDials), func(t *testing.T) {
				testIdentifyWithGoLibp2p(t, sec, concordDials)
			})
		}
	}
}

func testIdentifyWithGoLibp2p(t *testing.T, sec string, concordDials bool) {
	lh := newLibp2pIdentify(t, sec)
	lev := subscribeIdentify(t, lh)
	var cev events
	ch, err := chost.New(chost.Config{
		ListenAddrs:  []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Upgrader:     upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{sec}}},
		TCP:          tcp.Config{DisableReuse: true},
		AgentVersion: "concord-interop/1",
		Observer:     cev.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	cid, lid := lppeer.ID(ch.ID()), lh.ID()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var cc *chost.Conn
	if concordDials {
		cc, err = ch.Connect(ctx, peer.AddrInfo{ID: peer.ID(lid), Addrs: lh.Addrs()})
		if err != nil {
			t.Fatal(err)
		}
	} else {
		if err := lh.Connect(ctx, lppeer.AddrInfo{ID: cid, Addrs: ch.Addrs()}); err != nil {
			t.Fatal(err)
		}
		for cc == nil && ctx.Err() == nil {
			if cs := ch.Conns(peer.ID(lid)); len(cs) > 0 {
				cc = cs[0]
			}
			time.Sleep(time.Millisecond)
		}
	}

	// go-libp2p's view of Concord.
	done := lev.next(t, cid, func(ev any) bool {
		c, ok := ev.(event.EvtPeerIdentificationCompleted)
		return ok && c.Peer == cid
	}).(event.EvtPeerIdentificationCompleted)
	if done.AgentVersion != "concord-interop/1" || done.ProtocolVersion != chost.DefaultProtocolVersion {
		t.Errorf("go-libp2p sees agent %q, protocol version %q", done.AgentVersion, done.ProtocolVersion)
	}
	protos, err := lh.Peerstore().GetProtocols(cid)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{identify.ID, identify.PushID, chost.HelloProtocolID, "/ipfs/ping/1.0.0"} {
		if !slices.Contains(protos, protocol.ID(p)) {
			t.Errorf("go-libp2p's peerstore lists %v, lacking %s", protos, p)
		}
	}
	if err := sameAddrs(ch.Addrs(), done.ListenAddrs); err != nil {
		t.Errorf("go-libp2p's listen addrs of Concord: %v", err)
	}
	// go-libp2p v0.51 verifies the envelope (signature, key, peer ID) and
	// takes the addresses from the record, but does not keep the record
	// ("They're not used anywhere", consumeSignedPeerRecord): the event
	// carries it only if it passed.
	if done.SignedPeerRecord == nil {
		t.Error("go-libp2p did not accept Concord's signed peer record")
	} else if r, err := done.SignedPeerRecord.Record(); err != nil {
		t.Errorf("Concord's record: %v", err)
	} else if pr, ok := r.(*lppeer.PeerRecord); !ok || pr.PeerID != cid {
		t.Errorf("Concord's record is %T for %v", r, pr)
	} else if err := sameAddrs(ch.Addrs(), pr.Addrs); err != nil {
		t.Errorf("Concord's signed addrs in go-libp2p: %v", err)
	}
	if err := sameAddrs(ch.Addrs(), lh.Peerstore().Addrs(cid)); err != nil {
		t.Errorf("go-libp2p's peerstore addrs of Concord: %v", err)
	}
	if obs := done.ObservedAddr; obs == nil || !obs.Equal(lh.Network().ConnsToPeer(cid)[0].LocalMultiaddr()) {
		t.Errorf("go-libp2p's observed address %v", obs)
	}

	// Concord's view of go-libp2p.
	select {
	case <-cc.Identified():
	case <-ctx.Done():
		t.Fatal("Concord did not identify go-libp2p within 5 s")
	}
	info, err := cc.Identify()
	if err != nil {
		t.Fatalf("Concord's identify of go-libp2p: %v", err)
	}
	if info.AgentVersion != "go-libp2p-interop/1" || info.PublicKey == nil {
		t.Errorf("Concord sees agent %q, key %v", info.AgentVersion, info.PublicKey)
	}
	for _, p := range []string{identify.ID, identify.PushID, "/ipfs/ping/1.0.0"} {
		if !info.Supports(p) {
			t.Errorf("Concord sees protocols %q, lacking %s", info.Protocols, p)
		}
	}
	if info.Supports(chost.HelloProtocolID) {
		t.Error("go-libp2p listed the hello protocol")
	}
	if err := sameAddrs(lh.Addrs(), info.ListenAddrs); err != nil {
		t.Errorf("Concord's listen addrs of go-libp2p: %v", err)
	}
	if info.Record == nil || info.Record.PeerID != peer.ID(lid) {
		t.Errorf("Concord's record of go-libp2p: %+v", info.Record)
	} else if err := sameAddrs(lh.Addrs(), info.Record.Addrs); err != nil {
		t.Errorf("go-libp2p's signed addrs: %v", err)
	}

	// Pushes both ways.
	const added = "/interop/added/1.0.0"
	ch.SetStreamHandler(added, func(s *chost.Stream) { _ = s.Close() })
	lev.next(t, cid, func(ev any) bool {
		u, ok := ev.(event.EvtPeerProtocolsUpdated)
		return ok && u.Peer == cid && slices.Contains(u.Added, protocol.ID(added))
	})
	lh.SetStreamHandler(added, func(s lpnetwork.Stream) { _ = s.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if info, _ := cc.Identify(); info.Supports(added) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Concord did not learn go-libp2p's new protocol by push within 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
	for _, ev := range cev.snapshot() {
		if f, ok := ev.(chost.IdentifyFailed); ok {
			t.Errorf("Concord: %v", f.Err)
		}
	}
}
