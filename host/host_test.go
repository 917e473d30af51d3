package host

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordp2p/concord/host/echo"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/upgrader"
)

func TestConnectAndStreams(t *testing.T) {
	a, b := newHost(t, Config{}), newHost(t, Config{})
	c, err := a.Connect(context.Background(), b.AddrInfo())
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if c.RemotePeer() != b.ID() {
		t.Fatalf("connected to %s, want %s", c.RemotePeer(), b.ID())
	}
	echoOver(t, a, b.ID(), "a to b")
	// b can open streams on the connection a made.
	if !waitUntil(t, time.Second, func() bool { return len(b.Conns(a.ID())) == 1 }) {
		t.Fatalf("b has %d conns to a, want 1", len(b.Conns(a.ID())))
	}
	echoOver(t, b, a.ID(), "b to a")
	// A second Connect returns the same connection.
	c2, err := a.Connect(context.Background(), b.AddrInfo())
	if err != nil || c2 != c {
		t.Fatalf("second Connect = %v, %v; want the existing connection", c2, err)
	}
}

func TestUnknownProtocolIsRefusedNotHung(t *testing.T) {
	a, b := newHost(t, Config{}), newHost(t, Config{})
	if _, err := a.Connect(context.Background(), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := a.NewStream(context.Background(), b.ID(), "/no/such/protocol", "/nor/this")
	if !errors.Is(err, ErrProtocolNotSupported) {
		t.Fatalf("NewStream for unknown protocols = %v, want ErrProtocolNotSupported", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("refusal took %v", d)
	}
	echoOver(t, a, b.ID(), "still usable")
}

func TestConcurrentConnectsShareOneDial(t *testing.T) {
	var log eventLog
	a, b := newHost(t, Config{Observer: log.observe}), newHost(t, Config{})
	const n = 16
	conns := make([]*Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conns[i], errs[i] = a.Connect(context.Background(), b.AddrInfo())
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || conns[i] != conns[0] {
			t.Fatalf("Connect %d = %p, %v; want the shared %p", i, conns[i], errs[i], conns[0])
		}
	}
	if got := log.count(isOpened); got != 1 {
		t.Errorf("%d connections opened for %d concurrent Connects, want 1", got, n)
	}
}

func TestNoConnectionNoAddrs(t *testing.T) {
	a := newHost(t, Config{})
	k, _ := peer.GenerateKey(peer.Ed25519, nil)
	p, _ := peer.IDFromPrivateKey(k)
	if _, err := a.NewStream(context.Background(), p, "/x"); !errors.Is(err, ErrNoConnection) {
		t.Errorf("NewStream to an unknown peer = %v, want ErrNoConnection", err)
	}
}

func TestCloseIsIdempotentAndStopsEverything(t *testing.T) {
	a, b := newHost(t, Config{}), newHost(t, Config{})
	if _, err := a.Connect(context.Background(), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	a.KeepConnected(b.ID(), b.Addrs()...)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Connect(context.Background(), b.AddrInfo()); !errors.Is(err, ErrHostClosed) {
		t.Errorf("Connect after Close = %v, want ErrHostClosed", err)
	}
	if !waitUntil(t, 2*time.Second, func() bool { return len(b.Conns(a.ID())) == 0 }) {
		t.Errorf("b still has %d conns to the closed host", len(b.Conns(a.ID())))
	}
}

func TestSecurityChoices(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []string
		want string
	}{
		{"tls only", []string{SecurityTLS}, []string{SecurityTLS}, SecurityTLS},
		{"noise only", []string{SecurityNoise}, []string{SecurityNoise}, SecurityNoise},
		{"dialer prefers tls", []string{SecurityTLS, SecurityNoise}, nil, SecurityTLS},
		{"listener has tls only", nil, []string{SecurityTLS}, SecurityTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newHost(t, securityConfig(tc.a)), newHost(t, securityConfig(tc.b))
			c, err := a.Connect(context.Background(), b.AddrInfo())
			if err != nil {
				t.Fatal(err)
			}
			if c.Security() != tc.want || !c.MuxerInlined() {
				t.Errorf("security %s (muxer inlined %v), want %s inlined", c.Security(), c.MuxerInlined(), tc.want)
			}
			echoOver(t, a, b.ID(), "over "+tc.want)
		})
	}
	if _, err := New(Config{Upgrader: upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{"/plaintext/2.0.0"}}}}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("unknown security protocol: %v, want ErrInvalidConfig", err)
	}
}

// refusingGater refuses every secured connection and counts them.
type refusingGater struct{ secured *atomic.Int32 }

var errGaterRefuses = errors.New("test gater refuses")

func (refusingGater) InterceptAccept(net.Addr) error { return nil }
func (g refusingGater) InterceptSecured(network.Direction, peer.ID, net.Addr) error {
	g.secured.Add(1)
	return errGaterRefuses
}
func (refusingGater) InterceptUpgraded(*upgrader.Conn) error { return nil }

// TestUpgraderConfigReachable: knobs a host could not set before the
// layers' configs were nested (the gater, Noise's config, the stage
// timeouts) take effect through Config.Upgrader, and the fields the host
// fills itself are refused.
func TestUpgraderConfigReachable(t *testing.T) {
	g := refusingGater{secured: new(atomic.Int32)}
	b := newHost(t, Config{Upgrader: upgrader.Config{
		Gater:         g,
		Security:      upgrader.SecurityConfig{Noise: noise.Config{StaticKeyLifetime: -1}},
		StageTimeouts: upgrader.StageTimeouts{Simopen: time.Second},
	}})
	a := newHost(t, Config{})
	// The dialer's handshake can finish before the listener refuses:
	// Connect may succeed, but the connection must then die on both ends.
	_, _ = a.Connect(context.Background(), b.AddrInfo())
	if !waitUntil(t, 2*time.Second, func() bool { return len(b.Conns(a.ID())) == 0 && len(a.Conns(b.ID())) == 0 }) {
		t.Fatal("a gated connection stayed in a table")
	}
	if g.secured.Load() == 0 {
		t.Fatal("the host's gater was never consulted")
	}
	for name, u := range map[string]upgrader.Config{
		"identity": {Identity: a.cfg.Identity},
		"observer": {Observer: func(upgrader.Event) {}},
		"rand":     {Rand: strings.NewReader("x")},
	} {
		if _, err := New(Config{Upgrader: u}); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Upgrader.%s set: New = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestBuiltinProtocols(t *testing.T) {
	a := newHost(t, Config{})
	b := newHost(t, Config{Protocols: Protocols{Echo: &echo.Server{}, Perf: &perf.Server{}}})
	if _, err := a.Connect(context.Background(), b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rtt, err := a.Ping(ctx, b.ID())
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}
	s, err := a.NewStream(ctx, b.ID(), echo.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := echo.Echo(ctx, s, []byte("echo served by the host"))
	_ = s.Close()
	if err != nil || string(got) != "echo served by the host" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	s, err = a.NewStream(ctx, b.ID(), perf.ID)
	if err != nil {
		t.Fatal(err)
	}
	res, err := perf.Run(ctx, s, 1<<20, 3<<20, nil)
	_ = s.Close()
	if err != nil || res.Uploaded != 1<<20 || res.Downloaded != 3<<20 {
		t.Fatalf("perf = %+v, %v", res, err)
	}
	// a serves neither echo nor perf: refused, not hung.
	if _, err := b.NewStream(ctx, a.ID(), perf.ID); !errors.Is(err, ErrProtocolNotSupported) {
		t.Errorf("perf on a host not serving it: %v, want ErrProtocolNotSupported", err)
	}
}
