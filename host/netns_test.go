package host

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
)

// Tests of the host between two network namespaces (internal/netlab), each
// host a process of the namespace harness (internal/nspeer) inside its
// namespace: a host dials and accepts on goroutines of its own, which under
// netlab.Host.Do would be in the root namespace. The peers run under the race
// detector when this binary does.

// buildPeer builds the harness's program for one test.
func buildPeer(t *testing.T) *nspeer.Program {
	t.Helper()
	return nspeer.Build(t, nspeer.BuildConfig{Race: nspeer.RaceEnabled})
}

// connectBoth sends connect (with a first echo stream) from a to b and from
// b to a without waiting, for the caller to release the dials (or not), and
// returns the replies' futures.
func connectBoth(t *testing.T, a, b *nspeer.Proc) (pa, pb nspeer.Pending) {
	t.Helper()
	pa, err := a.Send("connect", b.ID, b.Addr, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if pb, err = b.Send("connect", a.ID, a.Addr, "echo"); err != nil {
		t.Fatal(err)
	}
	return pa, pb
}

// await reads the replies of connectBoth.
func await(t *testing.T, pa, pb nspeer.Pending) (ra, rb nspeer.ConnectReply) {
	t.Helper()
	if err := pa.Await(&ra); err != nil {
		t.Fatal(err)
	}
	if err := pb.Await(&rb); err != nil {
		t.Fatal(err)
	}
	return ra, rb
}

// checkOneSimopenConn checks that both ends hold one connection that came
// out of a TCP simultaneous open: an election took place on both ends,
// neither listener accepted anything, and the addresses mirror each other.
func checkOneSimopenConn(t *testing.T, run int, sa, sb nspeer.StateReply) {
	t.Helper()
	ca, cb := sa.Conns[0], sb.Conns[0]
	if !ca.Election || !cb.Election {
		t.Errorf("run %d: election on A %v, on B %v; a simultaneous open elects on both", run, ca.Election, cb.Election)
	}
	if sa.Accepted != 0 || sb.Accepted != 0 {
		t.Errorf("run %d: listeners accepted %d (A) and %d (B) connections, want 0 in a simultaneous open", run, sa.Accepted, sb.Accepted)
	}
	if ca.Local != cb.Remote || ca.Remote != cb.Local {
		t.Errorf("run %d: A's conn %s->%s does not mirror B's %s->%s", run, ca.Local, ca.Remote, cb.Local, cb.Remote)
	}
	if ca.Role == cb.Role {
		t.Errorf("run %d: both ends are %s", run, ca.Role)
	}
}

// TestNetnsSimultaneousOpenDuplicate: two hosts in two namespaces Connect
// to each other at once from their listen ports, and the bare SYNs are
// dropped until both sockets are in SYN-SENT, so the kernel makes one TCP
// connection out of the two dials (a real simultaneous open). Every run
// must end with exactly that one connection on each end, the same, within
// 1 s, usable both ways, with no stream lost: each Connect is followed by
// an echo stream while the hellos are still crossing.
func TestNetnsSimultaneousOpenDuplicate(t *testing.T) {
	pair := netlab.NewPair(t)
	prog := buildPeer(t)
	const runs = 50 // issue 6: each duplicate scenario at least 50 runs
	var firstA, firstB []time.Duration
	for run := range runs {
		port := 43000 + 2*run // fresh 4-tuples: no TIME-WAIT from the last run
		a := prog.Start(t, pair.A, nspeer.Options{Name: "A", Port: port})
		b := prog.Start(t, pair.B, nspeer.Options{Name: "B", Port: port + 1})

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		removeSYN, err := pair.DropBareSYNs(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		pa, pb := connectBoth(t, a, b)
		waitErr := pair.WaitSynSent(ctx)
		cancel()
		if err := removeSYN(); err != nil {
			t.Fatalf("removing the SYN rules: %v", err)
		}
		ra, rb := await(t, pa, pb)
		if waitErr != nil {
			t.Fatalf("run %d: %v (connects: A %q, B %q)", run, waitErr, ra.Err, rb.Err)
		}
		if ra.Err != "" || rb.Err != "" {
			t.Fatalf("run %d: connect and first stream: A %q, B %q", run, ra.Err, rb.Err)
		}
		sa, sb, err := nspeer.Converged(a, b, time.Second)
		if err != nil {
			t.Fatalf("run %d: %v\nA: %+v\nB: %+v", run, err, sa.Conns, sb.Conns)
		}
		checkOneSimopenConn(t, run, sa, sb)
		a.Must(nil, "echo", b.ID, 64) // after convergence, A to B
		b.Must(nil, "echo", a.ID, 64) // and B to A
		firstA, firstB = append(firstA, ra.First), append(firstB, rb.First)
		a.Stop()
		b.Stop()
	}
	t.Logf("%d real simultaneous opens: one connection, the same on both ends, every run; "+
		"time from Connect to the first echo answered (includes the ~1 s SYN retransmission the fixture forces): median A %v, B %v",
		runs, median(firstA), median(firstB))
}

// TestNetnsSimultaneousOpenLatency compares the time from Connect to the
// first echo stream answered, over a link with a 50 ms delay line in each
// direction (100 ms round trip), between a single dial and two dials that
// cross in flight (a simultaneous open with an election). The design
// (decision 1) says an election costs no round trip over a single dial.
// The delay is long so that a round trip stands out of the scheduling
// noise of a loaded machine: with 20 ms, a CI run beside other work once
// measured 96 ms of extra (single dial Connect median 198 ms for a 40 ms
// round trip, so the noise, not the protocol).
func TestNetnsSimultaneousOpenLatency(t *testing.T) {
	pair := netlab.NewPair(t)
	prog := buildPeer(t)
	const d = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range []*netlab.Host{pair.A, pair.B} {
		l, err := h.DelayLine(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Stop() })
	}
	const runs = 5
	port := 45000
	var singleConnect, single, simConnect, simFirst []time.Duration
	for range runs {
		port += 2
		a := prog.Start(t, pair.A, nspeer.Options{Name: "A", Port: port})
		b := prog.Start(t, pair.B, nspeer.Options{Name: "B", Port: port + 1})
		var r nspeer.ConnectReply
		a.Must(&r, "connect", b.ID, b.Addr, "echo")
		singleConnect, single = append(singleConnect, r.Connect), append(single, r.First)
		a.Stop()
		b.Stop()
	}
	inconclusive := 0
	for run := 0; run < 4*runs && len(simFirst) < runs; run++ {
		port += 2
		a := prog.Start(t, pair.A, nspeer.Options{Name: "A", Port: port})
		b := prog.Start(t, pair.B, nspeer.Options{Name: "B", Port: port + 1})
		pa, pb := connectBoth(t, a, b)
		ra, rb := await(t, pa, pb)
		if ra.Err != "" || rb.Err != "" {
			t.Fatalf("run %d: connect and first stream: A %q, B %q", run, ra.Err, rb.Err)
		}
		sa, sb, err := nspeer.Converged(a, b, time.Second)
		if err != nil {
			t.Fatalf("run %d: %v\nA: %+v\nB: %+v", run, err, sa.Conns, sb.Conns)
		}
		skew := time.Duration(ra.Began - rb.Began).Abs()
		if skew > d/2 || !sa.Conns[0].Election || !sb.Conns[0].Election || sa.Accepted+sb.Accepted != 0 {
			// The dials did not cross in flight (the children started
			// them too far apart); the run says nothing about latency.
			inconclusive++
		} else {
			simConnect = append(simConnect, max(ra.Connect, rb.Connect))
			simFirst = append(simFirst, max(ra.First, rb.First))
		}
		a.Stop()
		b.Stop()
	}
	if len(simFirst) == 0 {
		t.Fatalf("no run of %d produced a simultaneous open within the skew bound", inconclusive)
	}
	t.Logf("round trip 2×%v, medians: single dial: Connect %v, first echo answered %v; simultaneous open (slower end): Connect %v, first echo answered %v (%d runs, %d inconclusive)",
		d, median(singleConnect), median(single), median(simConnect), median(simFirst), len(simFirst), inconclusive)
	// One round trip more than a single dial would mean the election is
	// not pipelined as decision 1 says; allow half a round trip of noise.
	if extra := median(simFirst) - median(single); extra > 3*d {
		t.Errorf("a simultaneous open reaches its first stream %v later than a single dial, want < %v (less than one extra round trip)", extra, 3*d)
	}
}

// TestNetnsBlackholeKeepalive: a connected pair of hosts; then A vanishes
// (every packet to or from it dropped, no RST, no ICMP). B must notice
// through the yamux keepalive within KeepAliveInterval + PingTimeout (plus
// slack for a loaded machine), report it as a keepalive timeout, and drop
// the connection from its table.
func TestNetnsBlackholeKeepalive(t *testing.T) {
	netlab.Require(t)
	prog := buildPeer(t)
	for _, tc := range []struct {
		name          string
		interval, pto time.Duration
		bound         time.Duration
	}{
		{"1s+1s", time.Second, time.Second, 2 * time.Second},
		{"default", 0, 0, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.bound > 5*time.Second && testing.Short() {
				t.Skipf("takes %v", tc.bound)
			}
			const slack = time.Second
			pair := netlab.NewPair(t)
			o := nspeer.Options{Name: "A", Port: 44000, KeepAlive: tc.interval, PingTimeout: tc.pto}
			a := prog.Start(t, pair.A, o)
			o.Name, o.Port = "B", o.Port+1
			b := prog.Start(t, pair.B, o)
			a.Must(nil, "connect", b.ID, b.Addr, "echo")
			if _, _, err := nspeer.Converged(a, b, time.Second); err != nil {
				t.Fatal(err)
			}
			b.Must(nil, "echo", a.ID, 64) // before the blackhole

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			restore, err := pair.A.Blackhole(ctx)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := b.WaitEvent(tc.bound+slack+5*time.Second, func(e nspeer.Event) bool { return e.Event == "closed" })
			if !ok {
				t.Fatalf("B did not close its connection to the blackholed A within %v", tc.bound+slack+5*time.Second)
			}
			took := e.Time().Sub(start)
			t.Logf("keepalive %s (bound %v): B detected the dead peer after %v (reason: %s)", tc.name, tc.bound, took, e.Reason)
			if !e.Matches("keepalive_timeout") {
				t.Errorf("ConnClosed reason %q, want one matching muxer.ErrKeepaliveTimeout", e.Reason)
			}
			if took > tc.bound+slack {
				t.Errorf("detected after %v, want within %v (+%v slack)", took, tc.bound, slack)
			}
			var st nspeer.StateReply
			b.Must(&st, "state", a.ID)
			if n := len(st.Conns); n != 0 {
				t.Errorf("B still holds %d connections to A after the close event", n)
			}
			if err := restore(); err != nil {
				t.Error(err)
			}
		})
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
