package faults

// Scenario 5, seed 003 ("Debugging the Internet", Varnish): a connection
// kept alive by a 600 s send timeout to a peer that no longer reads. Every
// wait must have a short deadline: a stream write that makes no progress,
// a peer that is frozen.

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/muxer/yamux"
)

// stallTimeout is the writer's yamux WriteStallTimeout in this scenario
// (the default is 30 s). The muxer reports a stall at the bound after the
// last progress (muxer/yamux: stallSlack 0); the test allows 0.5 s for
// scheduling between the processes.
const stallTimeout = 3 * time.Second

// testNoReadStall: a stream whose reader never reads. The writer's Write
// must fail with muxer.ErrWriteStalled within the stall timeout of its last
// progress, and the connection must keep serving other streams.
func testNoReadStall(t *testing.T, l *lab, stallTimeout time.Duration, runs int) {
	bound := stallTimeout + 500*time.Millisecond // scheduling slack
	name, ports, opt := fmt.Sprintf("5 peer that never reads a stream (WriteStallTimeout %v)", stallTimeout), [2]int{46001, 46002}, stallTimeout
	if stallTimeout == yamux.DefaultWriteStallTimeout {
		name, ports, opt = fmt.Sprintf("5 peer that never reads a stream (WriteStallTimeout default, %v)", stallTimeout), [2]int{46003, 46004}, 0
	}
	r := l.row(t, name, "003")
	pair := netlab.NewPair(t)
	rd := l.prog.Start(t, pair.B, nspeer.Options{Name: "reader", Port: ports[0]})
	w := l.prog.Start(t, pair.A, nspeer.Options{Name: "writer", Port: ports[1], WriteStall: opt})
	w.Must(nil, "connect", rd.ID, rd.Addr)
	sw, _, err := nspeer.Converged(w, rd, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var idles []time.Duration
	var written int
	for run := range runs {
		var sr stallReply
		w.Call(&sr, "stall", rd.ID, 64<<20)
		t.Logf("run %d: wrote %d bytes, then %q %v after %v without progress (%v in all)", run, sr.Written, sr.Err, sr.Is, sr.Idle, sr.Dur)
		if !sr.Matches("write_stalled") {
			t.Errorf("run %d: the write ended with %q %v, want muxer.ErrWriteStalled", run, sr.Err, sr.Is)
		}
		if sr.Idle > bound || sr.Idle < stallTimeout-100*time.Millisecond {
			t.Errorf("run %d: the write failed %v after its last progress, want within [%v, %v]", run, sr.Idle, stallTimeout, bound)
		}
		if sr.Seq != sw.Conns[0].Seq {
			t.Errorf("run %d: the stalled stream used connection %d, want %d", run, sr.Seq, sw.Conns[0].Seq)
		}
		// The same connection still carries other streams, both ways.
		var ew, er nspeer.EchoReply
		w.Must(&ew, "echo", rd.ID, 64<<10)
		rd.Must(&er, "echo", w.ID, 64<<10)
		if ew.Seq != sw.Conns[0].Seq {
			t.Errorf("run %d: the echo after the stall used connection %d, want the same %d", run, ew.Seq, sw.Conns[0].Seq)
		}
		idles = append(idles, sr.Idle)
		written = sr.Written
		r.Runs++
	}
	if _, _, err := nspeer.Converged(w, rd, time.Second); err != nil {
		t.Errorf("after the stalls: %v", err)
	}
	r.Outcome = fmt.Sprintf("%d/%d: Write failed with ErrWriteStalled after %d KiB; same connection echoed both ways after", r.Runs, runs, written>>10)
	r.Timings = fmt.Sprintf("no progress → error median %s, max %s (bound %v + 0.5 s scheduling slack)", ms(median(idles)), ms(maxDur(idles)), stallTimeout)
}

// testFrozen: the peer is frozen with SIGSTOP (its kernel still
// acknowledges TCP, only the program is gone). The live end must close the
// connection by keepalive within KeepAliveInterval + PingTimeout: 20 s with
// the defaults, 2 s with the short configuration.
func testFrozen(t *testing.T, l *lab, short bool) {
	const runs = 1
	const slack = time.Second
	o := nspeer.Options{Name: "live", Port: 47001}
	bound := 20 * time.Second
	name := "5 frozen peer (SIGSTOP), default keepalive 10 s + ping timeout 10 s"
	if short {
		o.KeepAlive, o.PingTimeout = time.Second, time.Second
		bound = 2 * time.Second
		name = "5 frozen peer (SIGSTOP), keepalive 1 s + ping timeout 1 s"
	}
	r := l.row(t, name, "003")
	pair := netlab.NewPair(t)
	live := l.prog.Start(t, pair.A, o)
	frozen := l.prog.Start(t, pair.B, nspeer.Options{Name: "frozen", Port: 47002, KeepAlive: o.KeepAlive, PingTimeout: o.PingTimeout})
	live.Must(nil, "connect", frozen.ID, frozen.Addr, "echo")
	ss, _, err := nspeer.Converged(live, frozen, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	frozen.Signal(syscall.SIGSTOP)
	defer frozen.Signal(syscall.SIGCONT)
	e, ok := live.WaitEvent(bound+slack+5*time.Second, func(e nspeer.Event) bool {
		return e.Event == "closed" && e.Seq == ss.Conns[0].Seq
	})
	if !ok {
		t.Fatalf("the live end did not close its connection to the frozen peer within %v", bound+slack+5*time.Second)
	}
	took := e.Time().Sub(start)
	r.Runs = runs
	r.Outcome = fmt.Sprintf("closed, reason %v", e.Is)
	r.Timings = fmt.Sprintf("SIGSTOP → close %s (bound %v + %v slack)", ms(took), bound, slack)
	if !e.Matches("keepalive_timeout") {
		t.Errorf("ConnClosed reason %q %v, want muxer.ErrKeepaliveTimeout", e.Reason, e.Is)
	}
	if took > bound+slack {
		t.Errorf("closed %v after the freeze, want within %v (+%v slack)", took, bound, slack)
	}
	if n := len(stateOf(t, live, frozen).Conns); n != 0 {
		t.Errorf("the live end still holds %d connections to the frozen peer", n)
	}
}
