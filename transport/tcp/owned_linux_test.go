package tcp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	ma "github.com/multiformats/go-multiaddr"
)

// withPort returns addr (a multiaddr string ending in /tcp/0) with port p.
func withPort(addr string, p int) string {
	return strings.TrimSuffix(addr, "/tcp/0") + fmt.Sprintf("/tcp/%d", p)
}

// wantPortInUse checks that err is Listen's refusal of an owned port.
func wantPortInUse(t *testing.T, what string, err error) {
	t.Helper()
	var le *ListenError
	switch {
	case err == nil:
		t.Errorf("%s: Listen succeeded, want ErrPortInUse", what)
	case !errors.Is(err, ErrPortInUse) || !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &le):
		t.Errorf("%s: %v, want a *ListenError wrapping ErrPortInUse and EADDRINUSE", what, err)
	}
}

// TestListenPortOwned: a port another socket listens on is refused, by
// another Transport or the same one, at the same address or at the
// overlapping wildcard, with or without SO_REUSEPORT on the newcomer;
// SharePort shares it.
func TestListenPortOwned(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) {
			owner := New(Config{})
			p := port(listen(t, owner, fam).Multiaddr())
			same := ma.StringCast(withPort(fam, p))
			wildcard := ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", p))
			if strings.HasPrefix(fam, "/ip6/") {
				wildcard = ma.StringCast(fmt.Sprintf("/ip6/::/tcp/%d", p))
			}
			for _, tc := range []struct {
				name string
				tr   *Transport
				addr ma.Multiaddr
			}{
				{"another transport", New(Config{}), same},
				{"the same transport", owner, same},
				{"the wildcard address", New(Config{}), wildcard},
				{"without reuse", New(Config{DisableReuse: true}), same},
			} {
				l, err := tc.tr.Listen(context.Background(), tc.addr)
				if l != nil {
					l.Close()
				}
				wantPortInUse(t, tc.name, err)
				if err != nil && !strings.Contains(err.Error(), tc.addr.String()) {
					t.Errorf("%s: error %q does not name %s", tc.name, err, tc.addr)
				}
			}
			shared, err := New(Config{SharePort: true}).Listen(context.Background(), same)
			if err != nil {
				t.Fatalf("Listen with SharePort: %v, want success", err)
			}
			shared.Close()
		})
	}
}

// TestListenOtherFamilySamePort: an IPv6 listener is IPv6-only, so even on
// the wildcard :: it does not overlap an IPv4 listener on the same port
// (the probe must be IPv6-only too). Nothing accepts on the wildcard
// listener, and it lives for the test only.
func TestListenOtherFamilySamePort(t *testing.T) {
	runFamily(t, families[1], func(t *testing.T) {
		tr := New(Config{})
		p := port(listen(t, tr, "/ip4/127.0.0.1/tcp/0").Multiaddr())
		listen(t, tr, fmt.Sprintf("/ip6/::/tcp/%d", p))
	})
}

// TestListenAgainAfterClose: a closed listener's port can be listened on
// again at once.
func TestListenAgainAfterClose(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) {
			first, err := New(Config{}).Listen(context.Background(), ma.StringCast(fam))
			if err != nil {
				t.Fatal(err)
			}
			addr := first.Multiaddr()
			first.Close()
			listen(t, New(Config{}), addr.String())
		})
	}
}

// TestListenWhileConnectionsOnPort is a restart: the old listener is
// closed, but a connection it dialed from its port and one it accepted are
// still established. A new Transport must listen on the port at once and
// still dial from it.
func TestListenWhileConnectionsOnPort(t *testing.T) {
	for _, fam := range families {
		runFamily(t, fam, func(t *testing.T) {
			old, server := New(Config{}), New(Config{})
			ol := listen(t, old, fam)
			sl := listen(t, server, fam)

			accepted := acceptOne(sl)
			dialed, err := old.Dial(context.Background(), sl.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			defer dialed.Close()
			if !dialed.Info().FromListenPort {
				t.Fatalf("old dial: FromListenPort false (%v), want the listen port", dialed.Info().FallbackCause)
			}
			if s := <-accepted; s != nil {
				defer s.Close()
			}
			accepted = acceptOne(ol)
			in, err := server.Dial(context.Background(), ol.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if s := <-accepted; s != nil {
				defer s.Close()
			} else {
				t.Fatal("old listener accepted nothing")
			}
			addr := ol.Multiaddr()
			ol.Close()

			restarted := New(Config{})
			rl := listen(t, restarted, addr.String())
			other := listen(t, New(Config{}), fam)
			accepted = acceptOne(other)
			c, err := restarted.Dial(context.Background(), other.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if s := <-accepted; s != nil {
				defer s.Close()
			}
			if !c.Info().FromListenPort || port(c.LocalMultiaddr()) != port(rl.Multiaddr()) {
				t.Errorf("dial after restart: FromListenPort=%v (%v) local %s, want the listen port %d",
					c.Info().FromListenPort, c.Info().FallbackCause, c.LocalMultiaddr(), port(rl.Multiaddr()))
			}
		})
	}
}

// TestListenWhileTimeWaitOnPort is a restart after the old node closed its
// connections first: one dialed from its port and one accepted on it sit in
// TIME-WAIT on A. A new Transport listens on the port at once, and the
// port is still owned against a second listener. It runs in a namespace
// pair so that A's socket list holds only the test's sockets.
func TestListenWhileTimeWaitOnPort(t *testing.T) {
	pair := netlab.NewPair(t)
	old := New(Config{})
	var ol *Listener
	if err := pair.A.Do(func() (err error) {
		ol, err = old.Listen(context.Background(), ma.StringCast("/ip4/0.0.0.0/tcp/0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	p := ol.Addr().(*net.TCPAddr).Port

	// B reads each connection to EOF before closing it, so A closes first.
	server := New(Config{})
	dst := drainServer(t, pair.B, server)

	var dialed, in *Conn
	if err := pair.A.Do(func() (err error) {
		dialed, err = old.Dial(context.Background(), dst)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !dialed.Info().FromListenPort {
		t.Fatalf("dial: FromListenPort false (%v), want the listen port", dialed.Info().FallbackCause)
	}
	accepted := acceptOne(ol)
	var inDone = make(chan struct{})
	if err := pair.B.Do(func() (err error) {
		in, err = server.Dial(context.Background(), ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", pair.A.Addr, p)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	go func() { defer close(inDone); io.Copy(io.Discard, in); in.Close() }()
	s := <-accepted
	if s == nil {
		t.Fatal("A accepted nothing")
	}
	ol.Close()
	dialed.Close()
	s.Close()
	<-inDone

	wantTW := []netlab.Socket{
		{Local: dialed.LocalAddr().(*net.TCPAddr).AddrPort(), Remote: dialed.RemoteAddr().(*net.TCPAddr).AddrPort(), State: netlab.StateTimeWait},
		{Local: s.LocalAddr().(*net.TCPAddr).AddrPort(), Remote: s.RemoteAddr().(*net.TCPAddr).AddrPort(), State: netlab.StateTimeWait},
	}
	// Bounded wait for the kernel to move both of A's ends to TIME-WAIT
	// (it does so when B's FIN arrives).
	deadline := time.Now().Add(5 * time.Second)
	for {
		ss, err := pair.A.Sockets()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(ss, wantTW[0]) && slices.Contains(ss, wantTW[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's sockets %v: want %v after 5 s", ss, wantTW)
		}
		time.Sleep(10 * time.Millisecond)
	}

	addr := ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", p))
	var rl *Listener
	if err := pair.A.Do(func() (err error) {
		rl, err = New(Config{}).Listen(context.Background(), addr)
		return err
	}); err != nil {
		t.Fatalf("listen with TIME-WAIT on the port: %v, want success", err)
	}
	defer rl.Close()
	err := pair.A.Do(func() error {
		l, err := New(Config{}).Listen(context.Background(), addr)
		if l != nil {
			l.Close()
		}
		return err
	})
	wantPortInUse(t, "second listener beside the restarted one", err)
}
