package host

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

func waitIdentified(t *testing.T, c *Conn) identify.Info {
	t.Helper()
	select {
	case <-c.Identified():
	case <-time.After(5 * time.Second):
		t.Fatal("identify did not finish within 5 s")
	}
	info, err := c.Identify()
	if err != nil {
		t.Fatalf("Identify: %v", err)
	}
	return info
}

// TestIdentifyBetweenHosts: two hosts learn each other's agent, key,
// protocols, listen addresses (signed and unsigned) and observed address.
func TestIdentifyBetweenHosts(t *testing.T) {
	var logA, logB eventLog
	a := newHost(t, Config{TCP: noReuse(), Observer: logA.observe, AgentVersion: "test-a/1"})
	b := newHost(t, Config{TCP: noReuse(), Observer: logB.observe})
	ca, err := a.Connect(context.Background(), b.AddrInfo())
	if err != nil {
		t.Fatal(err)
	}
	info := waitIdentified(t, ca)
	if info.AgentVersion != defaultAgentVersion() || info.ProtocolVersion != DefaultProtocolVersion {
		t.Errorf("versions %q %q", info.AgentVersion, info.ProtocolVersion)
	}
	if info.PublicKey == nil || !b.ID().MatchesPublicKey(info.PublicKey) {
		t.Error("no public key, or not b's")
	}
	for _, p := range []string{identify.ID, identify.PushID, HelloProtocolID, "/ipfs/ping/1.0.0", "/test/echo"} {
		if !info.Supports(p) {
			t.Errorf("protocols %q lack %s", info.Protocols, p)
		}
	}
	if !slices.IsSorted(info.Protocols) {
		t.Errorf("protocols %q not sorted", info.Protocols)
	}
	addrsEqual := func(x, y []ma.Multiaddr) bool {
		return slices.EqualFunc(x, y, func(p, q ma.Multiaddr) bool { return p.Equal(q) })
	}
	if !addrsEqual(info.ListenAddrs, b.Addrs()) {
		t.Errorf("listen addrs %v, want %v", info.ListenAddrs, b.Addrs())
	}
	if info.Record == nil || info.Record.PeerID != b.ID() || !addrsEqual(info.Record.Addrs, b.Addrs()) {
		t.Errorf("record %+v", info.Record)
	}
	if info.ObservedAddr == nil || !info.ObservedAddr.Equal(ca.LocalMultiaddr()) {
		t.Errorf("observed %v, want %v", info.ObservedAddr, ca.LocalMultiaddr())
	}
	// b learnt a's agent on its side of the same connection.
	var cb *Conn
	waitUntil(t, 5*time.Second, func() bool {
		cs := b.Conns(a.ID())
		if len(cs) == 1 {
			cb = cs[0]
		}
		return cb != nil
	})
	if cb == nil {
		t.Fatal("b has no connection to a")
	}
	if got := waitIdentified(t, cb); got.AgentVersion != "test-a/1" {
		t.Errorf("b sees agent %q", got.AgentVersion)
	}
	if n := logA.count(func(e Event) bool { pi, ok := e.(PeerIdentified); return ok && !pi.Push && pi.Seq == ca.Seq() }); n != 1 {
		t.Errorf("%d PeerIdentified events on a, want 1", n)
	}
	// Both speak hello, so it ran.
	if _, _, ok := ca.RemoteHello(); !waitUntil(t, 5*time.Second, func() bool { _, _, ok = ca.RemoteHello(); return ok }) {
		t.Error("no hello after identify")
	}
}

// TestIdentifyPush: a protocol added or removed after the connection is
// up reaches the peer by push.
func TestIdentifyPush(t *testing.T) {
	var log eventLog
	a := newHost(t, Config{TCP: noReuse(), Observer: log.observe})
	b := newHost(t, Config{TCP: noReuse()})
	ca, err := a.Connect(context.Background(), b.AddrInfo())
	if err != nil {
		t.Fatal(err)
	}
	waitIdentified(t, ca)
	// b must know a serves push before it pushes.
	if !waitUntil(t, 5*time.Second, func() bool {
		cs := b.Conns(a.ID())
		if len(cs) != 1 {
			return false
		}
		info, err := cs[0].Identify()
		return err == nil && info.Supports(identify.PushID)
	}) {
		t.Fatal("b did not identify a")
	}
	b.SetStreamHandler("/added/1.0.0", func(s *Stream) { _ = s.Close() })
	if !waitUntil(t, 5*time.Second, func() bool { info, _ := ca.Identify(); return info.Supports("/added/1.0.0") }) {
		t.Fatal("the added protocol was not pushed")
	}
	b.RemoveStreamHandler("/added/1.0.0")
	if !waitUntil(t, 5*time.Second, func() bool { info, _ := ca.Identify(); return !info.Supports("/added/1.0.0") }) {
		t.Fatal("the removed protocol was not pushed")
	}
	if n := log.count(func(e Event) bool { pi, ok := e.(PeerIdentified); return ok && pi.Push }); n < 2 {
		t.Errorf("%d push events, want at least 2", n)
	}
	info, _ := ca.Identify()
	if info.Record == nil || info.AgentVersion == "" {
		t.Errorf("a push lost fields it did not carry anew: %+v", info)
	}
}

func TestIdentifyReserved(t *testing.T) {
	h := newHost(t, Config{})
	for _, p := range []string{identify.ID, identify.PushID, HelloProtocolID} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("SetStreamHandler(%s) did not panic", p)
				}
			}()
			h.SetStreamHandler(p, func(*Stream) {})
		}()
	}
}

// fakePeer is a peer built from a bare upgrader over in-memory pipes, with
// stream handlers of the test's choosing: what a non-Concord peer does.
type fakePeer struct {
	key      peer.PrivKey
	id       peer.ID
	up       *upgrader.Upgrader
	handlers map[string]func(muxer.Stream)
	wrap     func(net.Conn) net.Conn // if not nil, wraps the peer's end of each pipe
	// raw, if not nil, serves each stream instead of serve: the stream
	// as accepted, before any multistream-select.
	raw func(muxer.Stream)
	// onConn, if not nil, runs on each connection once it is upgraded,
	// beside the accept loop; the connection closes after both end.
	onConn func(*upgrader.Conn)

	mu       sync.Mutex
	proposed []string // every protocol the host proposed, in order
}

func newFakePeer(t *testing.T, handlers map[string]func(muxer.Stream)) *fakePeer {
	t.Helper()
	k := mustKey(t)
	id, _ := peer.IDFromPrivateKey(k)
	u, err := upgrader.New(upgrader.Config{Identity: k})
	if err != nil {
		t.Fatal(err)
	}
	return &fakePeer{key: k, id: id, up: u, handlers: handlers}
}

// dialer is the host's dialRaw: each dial is a pipe whose far end the fake
// peer upgrades and serves until it closes.
func (f *fakePeer) dialer(t *testing.T, wg *sync.WaitGroup) func(context.Context, ma.Multiaddr) (net.Conn, error) {
	return func(ctx context.Context, _ ma.Multiaddr) (net.Conn, error) {
		x, py := simopentest.Pipe(time.Millisecond)
		var y net.Conn = py
		if f.wrap != nil {
			y = f.wrap(y)
		}
		wg.Go(func() {
			c, err := f.up.Upgrade(context.Background(), y, network.DirInbound, "")
			if err != nil {
				return
			}
			defer c.Close()
			var swg sync.WaitGroup
			defer swg.Wait()
			if f.onConn != nil {
				swg.Go(func() { f.onConn(c) })
			}
			for {
				s, err := c.AcceptStream(context.Background())
				if err != nil {
					return
				}
				if f.raw != nil {
					swg.Go(func() { f.raw(s) })
					continue
				}
				swg.Go(func() { f.serve(s) })
			}
		})
		return x, nil
	}
}

// serve answers multistream-select, recording every proposal (a matcher
// added first sees each one), and hands the stream to the handler of the
// one it accepts.
func (f *fakePeer) serve(s muxer.Stream) {
	m := multistream.NewMultistreamMuxer[string]()
	m.AddHandlerWithFunc("", func(p string) bool {
		f.mu.Lock()
		f.proposed = append(f.proposed, p)
		f.mu.Unlock()
		return false
	}, nil)
	for p := range f.handlers {
		m.AddHandler(p, nil)
	}
	proto, _, err := m.Negotiate(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	f.handlers[proto](s)
}

func (f *fakePeer) proposals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.proposed)
}

// answer returns an identify handler that writes m.
func answer(m identify.Message) func(muxer.Stream) {
	return func(s muxer.Stream) {
		_ = identify.Write(s, m)
		_ = s.Close()
	}
}

// TestHelloOnlyToPeersThatListIt: a peer whose identify lists no hello is
// never offered one (js-libp2p logged an error for each); it is marked
// legacy at once.
func TestHelloOnlyToPeersThatListIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		var f *fakePeer
		f = newFakePeer(t, map[string]func(muxer.Stream){
			identify.ID: func(s muxer.Stream) {
				pub, _ := peer.MarshalPublicKey(f.key.Public())
				answer(identify.Message{AgentVersion: "fake/1", PublicKey: pub, Protocols: []string{identify.ID}})(s)
			},
		})
		h := memHost(t, Config{}, f.dialer(t, &wg))
		c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
		if err != nil {
			t.Fatal(err)
		}
		<-c.Identified()
		time.Sleep(50 * time.Millisecond) // past the pipes' latency
		info, err := c.Identify()
		if err != nil || info.AgentVersion != "fake/1" {
			t.Fatalf("Identify = %+v, %v", info, err)
		}
		if got := f.proposals(); !slices.Equal(got, []string{identify.ID}) {
			t.Fatalf("the host proposed %q, want only identify", got)
		}
		h.mu.Lock()
		legacy := c.legacy
		h.mu.Unlock()
		if !legacy {
			t.Fatal("a peer without hello is not marked legacy")
		}
		closeAndWait(h)
		wg.Wait()
	})
}

// TestIdentifyRefusesForeignKey: a peer that presents another key or
// another peer's record in identify fails it; the connection stays.
func TestIdentifyRefusesForeignKey(t *testing.T) {
	other := mustKey(t)
	otherID, _ := peer.IDFromPrivateKey(other)
	otherPub, _ := peer.MarshalPublicKey(other.Public())
	otherRec, err := identify.SealRecord(other, identify.PeerRecord{PeerID: otherID, Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    identify.Message
		want error
	}{
		{"key", identify.Message{PublicKey: otherPub}, identify.ErrKeyMismatch},
		{"record", identify.Message{SignedPeerRecord: otherRec}, identify.ErrBadRecord},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var wg sync.WaitGroup
				var log eventLog
				f := newFakePeer(t, map[string]func(muxer.Stream){identify.ID: answer(tc.m)})
				h := memHost(t, Config{Observer: log.observe}, f.dialer(t, &wg))
				c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
				if err != nil {
					t.Fatal(err)
				}
				<-c.Identified()
				if _, err := c.Identify(); !errors.Is(err, tc.want) {
					t.Fatalf("Identify error %v, want %v", err, tc.want)
				}
				time.Sleep(50 * time.Millisecond) // past the pipes' latency
				if n := log.count(func(e Event) bool { f, ok := e.(IdentifyFailed); return ok && errors.Is(f.Err, tc.want) }); n != 1 {
					t.Fatalf("%d IdentifyFailed events, want 1", n)
				}
				if c.IsClosed() {
					t.Fatal("the connection closed")
				}
				closeAndWait(h)
				wg.Wait()
			})
		})
	}
}

// TestIdentifyTimeout: a peer that accepts the identify stream and never
// answers fails it at IdentifyTimeout exactly, and the hello is then
// offered as to a peer without identify.
func TestIdentifyTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		hold := make(chan struct{})
		f := newFakePeer(t, map[string]func(muxer.Stream){
			identify.ID: func(s muxer.Stream) { <-hold; _ = s.Reset() },
		})
		h := memHost(t, Config{IdentifyTimeout: 3 * time.Second}, f.dialer(t, &wg))
		c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		<-c.Identified()
		if d := time.Since(start); d > 3*time.Second || d < 3*time.Second-10*time.Millisecond {
			t.Fatalf("identify ended after %v, want 3 s", d)
		}
		if _, err := c.Identify(); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Identify error %v, want the deadline", err)
		}
		time.Sleep(50 * time.Millisecond) // past the pipes' latency
		if got := f.proposals(); !slices.Equal(got, []string{identify.ID, HelloProtocolID}) {
			t.Fatalf("the host proposed %q, want identify then hello", got)
		}
		close(hold)
		closeAndWait(h)
		wg.Wait()
	})
}

// TestIdentifyOversized: an answer over MaxMessageSize is refused without
// reading it all.
func TestIdentifyOversized(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		f := newFakePeer(t, map[string]func(muxer.Stream){
			identify.ID: func(s muxer.Stream) {
				_, _ = s.Write([]byte{0x81, 0x80, 0x01}) // 16385 bytes follow
				_, _ = s.Write(make([]byte, 1024))
				_ = s.Close()
			},
		})
		h := memHost(t, Config{}, f.dialer(t, &wg))
		c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
		if err != nil {
			t.Fatal(err)
		}
		<-c.Identified()
		if _, err := c.Identify(); !errors.Is(err, identify.ErrMalformed) {
			t.Fatalf("Identify error %v, want ErrMalformed", err)
		}
		closeAndWait(h)
		wg.Wait()
	})
}

// TestIdentifyExpandsUnspecified: a host listening on 0.0.0.0 announces
// the machine's addresses with its port, loopback among them, not 0.0.0.0.
func TestIdentifyExpandsUnspecified(t *testing.T) {
	h := newHost(t, Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/0")}})
	port, err := h.Addrs()[0].ValueForProtocol(ma.P_TCP)
	if err != nil {
		t.Fatal(err)
	}
	m := h.identifyMessage(nil)
	if !slices.ContainsFunc(m.ListenAddrs, ma.StringCast("/ip4/127.0.0.1/tcp/"+port).Equal) {
		t.Errorf("listen addrs %v lack loopback with port %s", m.ListenAddrs, port)
	}
	for _, a := range m.ListenAddrs {
		if ta, _, err := tcp.ToTCPAddr(a); err != nil || ta.IP.IsUnspecified() {
			t.Errorf("announced %v", a)
		}
	}
}
