package nspeer

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/internal/netlab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRestartKeepsKeyAndPort drives the harness through one life of a
// peer: connect and echo, kill -9, Restart, and the restarted process has
// the same identity and listen address and connects again, while the other
// peer sees the first connection close.
func TestRestartKeepsKeyAndPort(t *testing.T) {
	pair := netlab.NewPair(t)
	prog := Build(t, BuildConfig{Race: RaceEnabled})
	s := prog.Start(t, pair.B, Options{Name: "server", Port: 41001})
	c := prog.Start(t, pair.A, Options{Name: "client", Port: 41002, Key: filepath.Join(t.TempDir(), "client.key")})

	var r ConnectReply
	c.Must(&r, "connect", s.ID, s.Addr, "echo")
	if r.Seq == 0 || r.First < r.Connect {
		t.Errorf("connect reply %+v: want a sequence number and the first echo after the Connect", r)
	}
	sc, _, err := Converged(s, c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.FDs(); n < 4 {
		t.Errorf("client has %d open descriptors, want at least stdio and its listener", n)
	}

	c.Kill()
	closed, ok := s.WaitEvent(10*time.Second, func(e Event) bool { return e.Event == "closed" && e.Seq == sc.Conns[0].Seq })
	if !ok {
		t.Fatalf("the server reported no close of connection %d after the client's kill", sc.Conns[0].Seq)
	}
	t.Logf("server: connection %d closed: %s %v", closed.Seq, closed.Reason, closed.Is)

	c2 := c.Restart("client2")
	if c2.ID != c.ID || !c2.Addr.Equal(c.Addr) {
		t.Fatalf("restarted as %s at %s, want %s at %s", c2.ID, c2.Addr, c.ID, c.Addr)
	}
	if c2.Inc == c.Inc {
		t.Errorf("the restarted host kept incarnation %s", c.Inc)
	}
	c2.Must(nil, "connect", s.ID, s.Addr, "echo")
	if _, _, err := Converged(s, c2, time.Second); err != nil {
		t.Fatal(err)
	}
	var e EchoReply
	s.Must(&e, "echo", c2.ID, 1024)
}
