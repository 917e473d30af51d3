package host

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/transport/tcp"
)

// converged waits (up to 1 s) until a and b each hold exactly one
// connection to the other and it is the same connection: a's sequence
// number and the one b's hello announced match, and the other way round.
func converged(t *testing.T, a, b *Host) error {
	t.Helper()
	var last string
	ok := waitUntil(t, time.Second, func() bool {
		ca, cb := a.Conns(b.ID()), b.Conns(a.ID())
		if len(ca) != 1 || len(cb) != 1 {
			last = fmt.Sprintf("a holds %d conns, b holds %d", len(ca), len(cb))
			return false
		}
		incA, seqFromB, okA := ca[0].RemoteHello()
		incB, seqFromA, okB := cb[0].RemoteHello()
		if !okA || !okB {
			last = "hello not exchanged yet"
			return false
		}
		if seqFromA != ca[0].Seq() || seqFromB != cb[0].Seq() || incA != b.Incarnation() || incB != a.Incarnation() {
			last = fmt.Sprintf("different connections: a has seq %d (b says %d), b has seq %d (a says %d)",
				ca[0].Seq(), seqFromA, cb[0].Seq(), seqFromB)
			return false
		}
		return !ca[0].Draining() && !cb[0].Draining()
	})
	if !ok {
		return fmt.Errorf("not converged within 1s: %s", last)
	}
	return nil
}

// crossingDial makes a and b Connect to each other at the same instant and
// then echo over whatever connection they got, checking no data is lost.
func crossingDial(t *testing.T, a, b *Host) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, pair := range [][2]*Host{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = pair[0].Connect(context.Background(), pair[1].AddrInfo())
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("crossing Connects: %v / %v", errs[0], errs[1])
	}
	echoOver(t, a, b.ID(), "a to b during resolution")
	echoOver(t, b, a.ID(), "b to a during resolution")
}

func TestDuplicateCrossingDials(t *testing.T) {
	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("reuseport=%v", reuse), func(t *testing.T) {
			const runs = 50
			closed := 0
			for run := range runs {
				var log eventLog
				cfg := Config{TCP: tcp.Config{DisableReuse: !reuse}, Observer: log.observe}
				a, b := newHost(t, cfg), newHost(t, Config{TCP: tcp.Config{DisableReuse: !reuse}})
				crossingDial(t, a, b)
				if err := converged(t, a, b); err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				echoOver(t, a, b.ID(), "after convergence")
				closed += log.count(func(e Event) bool { _, ok := e.(DuplicateResolved); return ok })
				_ = a.Close()
				_ = b.Close()
			}
			t.Logf("%d runs: %d duplicates resolved on one side", runs, closed)
			if !reuse && closed == 0 {
				t.Errorf("crossing dials without reuse never produced a duplicate: the test exercises nothing")
			}
		})
	}
}

func TestDuplicateSecondAddressConcurrently(t *testing.T) {
	for run := range 50 {
		a := newHost(t, Config{TCP: noReuse(), DialStagger: time.Nanosecond})
		b := newHost(t, Config{TCP: noReuse(), ListenAddrs: []ma.Multiaddr{
			ma.StringCast("/ip4/127.0.0.1/tcp/0"), ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
		if len(b.Addrs()) != 2 {
			t.Fatalf("b listens on %v, want two addresses", b.Addrs())
		}
		if _, err := a.Connect(context.Background(), b.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		echoOver(t, a, b.ID(), "first")
		if err := converged(t, a, b); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		_ = a.Close()
		_ = b.Close()
	}
}

// TestDuplicateRestartedPeer: a client restarts (a new host with the same
// key, so the same peer ID) while the server still holds the old
// connection, which the old process never closed. The server must close
// the stale connection at once, and a stream it opens right after lands on
// the new connection.
func TestDuplicateRestartedPeer(t *testing.T) {
	for run := range 50 {
		var slog eventLog
		server := newHost(t, Config{Observer: slog.observe})
		key := mustKey(t)
		old := newHost(t, Config{Identity: key})
		if _, err := old.Connect(context.Background(), server.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(t, time.Second, func() bool {
			cs := server.Conns(old.ID())
			if len(cs) != 1 {
				return false
			}
			_, _, ok := cs[0].RemoteHello()
			return ok
		}) {
			t.Fatal("hello on the first connection never arrived")
		}
		// The old process "dies" silently: it is not closed, so its
		// connection stays up as far as TCP knows.
		start := time.Now()
		restarted := newHost(t, Config{Identity: key})
		if _, err := restarted.Connect(context.Background(), server.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		reconnect := time.Since(start)
		// Right after the reconnect, as the server sees it: once the new
		// connection is in its table, its streams must land there.
		if !waitUntil(t, time.Second, func() bool {
			return len(server.Conns(restarted.ID())) == 2 || len(server.Conns(restarted.ID())) == 1 && server.Conns(restarted.ID())[0].Seq() == 2
		}) {
			t.Fatalf("run %d: server never saw the new connection", run)
		}
		s, err := server.NewStream(context.Background(), restarted.ID(), "/test/echo")
		if err != nil {
			t.Fatalf("run %d: server NewStream: %v", run, err)
		}
		if s.Conn().Seq() != 2 {
			t.Errorf("run %d: the server's stream went to connection %d, want the new one (2)", run, s.Conn().Seq())
		}
		_ = s.Reset()
		echoOver(t, server, restarted.ID(), "server to the restarted client")
		if !waitUntil(t, time.Second, func() bool {
			cs := server.Conns(restarted.ID())
			if len(cs) != 1 {
				return false
			}
			inc, _, ok := cs[0].RemoteHello()
			return ok && inc == restarted.Incarnation()
		}) {
			t.Fatalf("run %d: server did not drop the stale connection within 1s (holds %d)", run, len(server.Conns(restarted.ID())))
		}
		if got := slog.count(func(e Event) bool {
			d, ok := e.(DuplicateResolved)
			return ok && d.Rule == ResolvedByIncarnation && d.Immediate
		}); got != 1 {
			t.Errorf("run %d: %d incarnation resolutions, want 1", run, got)
		}
		if run == 0 {
			t.Logf("restarted client connected in %v", reconnect)
		}
		_ = old.Close()
		_ = restarted.Close()
		_ = server.Close()
	}
}
