package tcp

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// families are the loopback listen addresses the loopback tests run on.
var families = []string{"/ip4/127.0.0.1/tcp/0", "/ip6/::1/tcp/0"}

// runFamily runs f as a subtest for one family; the IPv6 subtest is skipped,
// with the reason, only when the machine cannot bind ::1.
func runFamily(t *testing.T, fam string, f func(t *testing.T)) {
	t.Run(fam, func(t *testing.T) {
		if strings.HasPrefix(fam, "/ip6/") {
			l, err := net.Listen("tcp6", "[::1]:0")
			if err != nil {
				t.Skipf("no IPv6 loopback on this machine: %v", err)
			}
			l.Close()
		}
		f(t)
	})
}

func listen(t *testing.T, tr *Transport, addr string) *Listener {
	t.Helper()
	l, err := tr.Listen(context.Background(), ma.StringCast(addr))
	if err != nil {
		t.Fatalf("Listen(%s): %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptOne accepts one connection in the background.
func acceptOne(l *Listener) <-chan *Conn {
	ch := make(chan *Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

func port(m ma.Multiaddr) int {
	a, _, err := ToTCPAddr(m)
	if err != nil {
		panic(err)
	}
	return a.Port
}

func TestListenDialLoopback(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) {
			server, client := New(Config{}), New(Config{})
			sl := listen(t, server, fam)
			cl := listen(t, client, fam)
			if port(sl.Multiaddr()) == 0 {
				t.Fatalf("listener multiaddr %s has port 0, want the kernel's choice", sl.Multiaddr())
			}
			if got, want := sl.Addr().(*net.TCPAddr).Port, port(sl.Multiaddr()); got != want {
				t.Errorf("Addr port %d, Multiaddr port %d; want equal", got, want)
			}
			accepted := acceptOne(sl)
			c, err := client.Dial(context.Background(), sl.Multiaddr())
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer c.Close()
			s := <-accepted
			if s == nil {
				t.Fatal("Accept failed")
			}
			defer s.Close()

			ci, si := c.Info(), s.Info()
			if ci.Direction != network.DirOutbound || si.Direction != network.DirInbound {
				t.Errorf("directions = %v/%v, want outbound/inbound", ci.Direction, si.Direction)
			}
			if !ci.FromListenPort || ci.Fallback {
				t.Errorf("dialer FromListenPort=%v Fallback=%v, want true false", ci.FromListenPort, ci.Fallback)
			}
			if got, want := port(c.LocalMultiaddr()), port(cl.Multiaddr()); got != want {
				t.Errorf("dialer local port = %d, want the client's listen port %d", got, want)
			}
			if !c.LocalMultiaddr().Equal(s.RemoteMultiaddr()) || !c.RemoteMultiaddr().Equal(s.LocalMultiaddr()) {
				t.Errorf("dialer %s->%s, acceptor %s->%s: not mirror images",
					c.LocalMultiaddr(), c.RemoteMultiaddr(), s.LocalMultiaddr(), s.RemoteMultiaddr())
			}
			if !c.RemoteMultiaddr().Equal(sl.Multiaddr()) {
				t.Errorf("dialer remote = %s, want %s", c.RemoteMultiaddr(), sl.Multiaddr())
			}
			echo(t, c, s)
		})
	}
}

// echo checks that bytes flow both ways.
func echo(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct{ w, r net.Conn }{{a, b}, {b, a}} {
		if _, err := dir.w.Write([]byte("hello")); err != nil {
			t.Fatalf("write: %v", err)
		}
		buf := make([]byte, 5)
		dir.r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(dir.r, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("read = %q, %v; want \"hello\", nil", buf, err)
		}
	}
}

func TestDialWithoutListenerUsesEphemeralPort(t *testing.T) {
	sl := listen(t, New(Config{}), "/ip4/127.0.0.1/tcp/0")
	accepted := acceptOne(sl)
	c, err := New(Config{}).Dial(context.Background(), sl.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := <-accepted; s != nil {
		defer s.Close()
	}
	if info := c.Info(); info.FromListenPort || info.Fallback {
		t.Errorf("FromListenPort=%v Fallback=%v, want false false", info.FromListenPort, info.Fallback)
	}
}

// TestListenerFamilyMustMatch: an IPv6 listener's port is not used for an
// IPv4 dial, nor a loopback listener's for a non-loopback target.
func TestReuseAddrChoice(t *testing.T) {
	tr := New(Config{})
	tr.listeners = []*Listener{
		{addr: &net.TCPAddr{IP: net.ParseIP("::"), Port: 1}, ipv6: true},
		{addr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1").To4(), Port: 2}},
		{addr: &net.TCPAddr{IP: net.ParseIP("0.0.0.0").To4(), Port: 3}},
		{addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1").To4(), Port: 4}},
		{addr: &net.TCPAddr{IP: net.ParseIP("0.0.0.0").To4(), Port: 5}},
	}
	for _, tc := range []struct {
		target string
		ipv6   bool
		want   string // "" for none
	}{
		{"127.0.0.1", false, "127.0.0.1:4"},
		{"10.9.9.9", false, "0.0.0.0:3"},
		{"2001:db8::1", true, "[::]:1"},
		{"::1", true, "[::]:1"},
	} {
		got := tr.reuseAddr(&net.TCPAddr{IP: net.ParseIP(tc.target), Port: 9}, tc.ipv6)
		gotS := ""
		if got != nil {
			gotS = got.String()
		}
		if gotS != tc.want {
			t.Errorf("reuseAddr(%s) = %q, want %q", tc.target, gotS, tc.want)
		}
	}
	tr.listeners = tr.listeners[1:2] // only a specific non-loopback address
	if got := tr.reuseAddr(&net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 9}, false); got != nil {
		t.Errorf("reuseAddr with only a specific-address listener = %v, want nil", got)
	}
	tr = New(Config{DisableReuse: true})
	tr.listeners = []*Listener{{addr: &net.TCPAddr{IP: net.ParseIP("0.0.0.0").To4(), Port: 3}}}
	if got := tr.reuseAddr(&net.TCPAddr{IP: net.ParseIP("10.9.9.9"), Port: 9}, false); got != nil {
		t.Errorf("reuseAddr with DisableReuse = %v, want nil", got)
	}
}

func TestDisableReuse(t *testing.T) {
	sl := listen(t, New(Config{}), "/ip4/127.0.0.1/tcp/0")
	client := New(Config{DisableReuse: true})
	cl := listen(t, client, "/ip4/127.0.0.1/tcp/0")
	accepted := acceptOne(sl)
	c, err := client.Dial(context.Background(), sl.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s := <-accepted; s != nil {
		defer s.Close()
	}
	if c.Info().FromListenPort || port(c.LocalMultiaddr()) == port(cl.Multiaddr()) {
		t.Errorf("with DisableReuse: FromListenPort=%v local port %d (listen port %d), want an ephemeral port",
			c.Info().FromListenPort, port(c.LocalMultiaddr()), port(cl.Multiaddr()))
	}
}

// TestFallbackWhenTupleTaken dials the same target twice from the listen
// port: the second 4-tuple is taken, so the second dial must come from an
// ephemeral port and say so.
func TestFallbackWhenTupleTaken(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) { testFallbackWhenTupleTaken(t, fam) })
	}
}

func testFallbackWhenTupleTaken(t *testing.T, fam string) {
	server, client := New(Config{}), New(Config{})
	sl := listen(t, server, fam)
	cl := listen(t, client, fam)
	var conns []*Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 2; i++ {
		accepted := acceptOne(sl)
		c, err := client.Dial(context.Background(), sl.Multiaddr())
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if s := <-accepted; s != nil {
			conns = append(conns, s)
		}
	}
	first, second := conns[0], conns[2]
	if fi := first.Info(); !fi.FromListenPort || fi.Fallback {
		t.Errorf("first dial: FromListenPort=%v Fallback=%v, want true false", fi.FromListenPort, fi.Fallback)
	}
	si := second.Info()
	if si.FromListenPort || !si.Fallback {
		t.Errorf("second dial: FromListenPort=%v Fallback=%v, want false true", si.FromListenPort, si.Fallback)
	}
	if !errors.Is(si.FallbackCause, syscall.EADDRNOTAVAIL) && !errors.Is(si.FallbackCause, syscall.EADDRINUSE) {
		t.Errorf("FallbackCause = %v, want EADDRNOTAVAIL or EADDRINUSE", si.FallbackCause)
	}
	if got, lp := port(second.LocalMultiaddr()), port(cl.Multiaddr()); got == lp {
		t.Errorf("second dial local port = %d, the listen port; want an ephemeral one", got)
	}
	echo(t, second, conns[3])
}

func TestListenerClose(t *testing.T) {
	tr := New(Config{})
	l := listen(t, tr, "/ip4/127.0.0.1/tcp/0")
	done := make(chan error, 1)
	go func() { _, err := l.Accept(); done <- err }()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if got := tr.reuseAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, false); got != nil {
		t.Errorf("reuseAddr after Close = %v, want nil (closed listener still used)", got)
	}
}

// TestCloseIsGraceful: closing one end delivers the data written before it
// and then EOF, not a reset.
func TestCloseIsGraceful(t *testing.T) {
	sl := listen(t, New(Config{}), "/ip4/127.0.0.1/tcp/0")
	accepted := acceptOne(sl)
	c, err := New(Config{}).Dial(context.Background(), sl.Multiaddr())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	defer s.Close()
	payload := make([]byte, 1<<20)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, s)
	if err != nil || n != int64(len(payload)) {
		t.Errorf("peer read %d bytes, err %v; want %d bytes then EOF", n, err, len(payload))
	}
}

func TestUnsupportedAddr(t *testing.T) {
	tr := New(Config{})
	for _, s := range []string{
		"/dns4/localhost/tcp/1",
		"/ip4/127.0.0.1/udp/1",
		"/ip4/127.0.0.1",
		"/ip4/127.0.0.1/tcp/1/tcp/2",
		"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
		"/ip6/::ffff:127.0.0.1/tcp/1",
		"/tcp/1",
	} {
		m, err := ma.NewMultiaddr(s)
		if err != nil {
			t.Fatalf("bad test multiaddr %s: %v", s, err)
		}
		_, err = tr.Dial(context.Background(), m)
		var de *DialError
		if !errors.As(err, &de) || !errors.Is(err, ErrUnsupportedAddr) || !de.Addr.Equal(m) {
			t.Errorf("Dial(%s) = %v, want a *DialError naming it, wrapping ErrUnsupportedAddr", s, err)
		}
		_, err = tr.Listen(context.Background(), m)
		var le *ListenError
		if !errors.As(err, &le) || !errors.Is(err, ErrUnsupportedAddr) {
			t.Errorf("Listen(%s) = %v, want a *ListenError wrapping ErrUnsupportedAddr", s, err)
		}
	}
	if _, err := tr.Dial(context.Background(), nil); !errors.Is(err, ErrUnsupportedAddr) {
		t.Errorf("Dial(nil) = %v, want ErrUnsupportedAddr", err)
	}
}

func TestNegativeBacklogRefused(t *testing.T) {
	_, err := New(Config{ListenBacklog: -1}).Listen(context.Background(), ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	var le *ListenError
	if !errors.As(err, &le) {
		t.Errorf("Listen with ListenBacklog -1: %v, want a *ListenError", err)
	}
}

func TestDialRefused(t *testing.T) {
	// A port that was just listened on and closed: nothing listens there.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	m, _ := FromTCPAddr(addr)
	_, err = New(Config{}).Dial(context.Background(), m)
	var de *DialError
	if !errors.As(err, &de) || !errors.Is(err, syscall.ECONNREFUSED) || de.Timeout() {
		t.Errorf("Dial to a closed port: %v, want a *DialError wrapping ECONNREFUSED, not a timeout", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	got := New(Config{}).Config()
	want := Config{ConnectTimeout: 5 * time.Second, KeepAlivePeriod: 15 * time.Second, UserTimeout: 20 * time.Second}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	custom := Config{ConnectTimeout: time.Second, KeepAlivePeriod: -1, UserTimeout: -1, ListenBacklog: 3, DisableReuse: true}
	if got := New(custom).Config(); got != custom {
		t.Errorf("Config() = %+v, want %+v unchanged", got, custom)
	}
}

// TestDialOwnListenAddress: dialing one's own loopback listen address must
// reach the listener, not connect the socket to itself.
func TestDialOwnListenAddress(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) {
			tr := New(Config{})
			l := listen(t, tr, fam)
			accepted := acceptOne(l)
			c, err := tr.Dial(context.Background(), l.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := <-accepted
			if s == nil {
				t.Fatal("listener accepted nothing")
			}
			defer s.Close()
			if c.LocalMultiaddr().Equal(c.RemoteMultiaddr()) {
				t.Errorf("connection %s -> %s is connected to itself", c.LocalMultiaddr(), c.RemoteMultiaddr())
			}
			if info := c.Info(); info.FromListenPort {
				t.Errorf("FromListenPort = true, want an ephemeral port for a self-dial")
			}
			echo(t, c, s)
		})
	}
}
