package faults

// Scenario 4, seed 002 ("TCP is not reliable", H2O): under load, short
// connections are opened, written and closed with no error on either side,
// yet the receiver never sees the data: the kernel reset them before the
// application accepted them (accept queue overflow with
// tcp_abort_on_overflow).

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
)

const (
	overflowMessages = 1000
	overflowSenders  = 50 // Concord senders: hosts, one connection each
	overflowRawConc  = 50 // raw TCP: connections in flight at once
	overflowBacklog  = 4
	overflowDelay    = 5 * time.Millisecond
	// overflowFreeze is how long the receiver is stopped (SIGSTOP) when
	// the burst begins: it accepts nothing meanwhile, so the accept queue
	// overflows.
	overflowFreeze = 300 * time.Millisecond
	// overflowAcceptDelay slows the raw receiver's accept loop. Concord's
	// accept loop is the host's own and cannot be slowed from outside;
	// the freeze applies to both.
	overflowAcceptDelay = 2 * time.Millisecond
)

// freezeDuring stops p, runs start, and resumes p after freeze.
func freezeDuring(p *nspeer.Proc, freeze time.Duration, start func()) {
	p.Signal(syscall.SIGSTOP)
	start()
	time.Sleep(freeze)
	p.Signal(syscall.SIGCONT)
}

func testOverflow(t *testing.T, l *lab) {
	r := l.row(t, "4 overflow under load", "002")
	pair := netlab.NewPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, h := range []*netlab.Host{pair.A, pair.B} {
		dl, err := h.DelayLine(ctx, overflowDelay)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dl.Stop() })
	}
	sysctl(t, pair.B, "net.ipv4.tcp_abort_on_overflow=1")
	const port, rawPort = 45001, 45002
	// All senders share the client namespace's address; the per-IP
	// admission limit (16) would refuse most of them, which is admission
	// working but not this scenario's subject.
	recv := l.prog.Start(t, pair.B, nspeer.Options{Name: "receiver", Port: port, Backlog: overflowBacklog, PerIP: overflowSenders})
	send := l.prog.Start(t, pair.A, nspeer.Options{Name: "senders"})

	// Concord: every message on its own stream, acknowledged.
	c0 := counters(t, pair.B)
	var ch nspeer.Pending
	var mr msgsReply
	freezeDuring(recv, overflowFreeze, func() {
		c, err := send.Send("msgs", recv.ID, recv.Addr, overflowSenders, overflowMessages/overflowSenders)
		if err != nil {
			t.Fatal(err)
		}
		ch = c
	})
	if err := ch.Await(&mr); err != nil {
		t.Fatal(err)
	}
	c1 := counters(t, pair.B)
	var got idsReply
	recv.Must(&got, "received")
	silent, dups, delivered := 0, 0, 0
	for _, id := range mr.Acked {
		if got.IDs[strconv.FormatUint(id, 10)] == 0 {
			silent++
		}
	}
	for _, n := range got.IDs {
		delivered++
		if n > 1 {
			dups++
		}
	}
	overflows := c1["ListenOverflows"] - c0["ListenOverflows"]
	t.Logf("Concord: %d acked, %d errored (%v), %d received, %d silent losses, %d duplicates, %d listen overflows, %v",
		len(mr.Acked), mr.Failed, mr.Errs, delivered, silent, dups, overflows, mr.Dur)
	if len(mr.Acked)+mr.Failed != overflowMessages {
		t.Errorf("Concord: %d acked + %d errored, want %d messages accounted for", len(mr.Acked), mr.Failed, overflowMessages)
	}
	if silent != 0 {
		t.Errorf("Concord: %d messages acknowledged but never received, want 0", silent)
	}
	if dups != 0 {
		t.Errorf("Concord: %d messages received more than once, want 0", dups)
	}

	// Raw TCP in the same setup: connect, write, close; success means no
	// call failed.
	var addr struct {
		nspeer.Result
		Addr string
	}
	recv.Must(&addr, "rawserve", rawPort, overflowBacklog, overflowAcceptDelay)
	target := fmt.Sprintf("%s:%d", pair.B.Addr, rawPort)
	var rr rawSendReply
	freezeDuring(recv, overflowFreeze, func() {
		c, err := send.Send("rawsend", target, overflowMessages, overflowRawConc)
		if err != nil {
			t.Fatal(err)
		}
		ch = c
	})
	if err := ch.Await(&rr); err != nil {
		t.Fatal(err)
	}
	// Let the receiver drain what it has accepted: until its count is
	// stable for 300 ms, at most 10 s.
	var raw idsReply
	for deadline, last, stable := time.Now().Add(10*time.Second), -1, 0; time.Now().Before(deadline) && stable < 3; time.Sleep(100 * time.Millisecond) {
		recv.Must(&raw, "rawreceived")
		if len(raw.IDs) == last {
			stable++
		} else {
			last, stable = len(raw.IDs), 0
		}
	}
	c2 := counters(t, pair.B)
	rawSilent := 0
	for _, id := range rr.OK {
		if raw.IDs[strconv.FormatUint(id, 10)] == 0 {
			rawSilent++
		}
	}
	rawOverflows := c2["ListenOverflows"] - c1["ListenOverflows"]
	t.Logf("raw TCP: %d sent without error, %d errored, %d received, %d silent losses, %d listen overflows, %v",
		len(rr.OK), rr.Failed, len(raw.IDs), rawSilent, rawOverflows, rr.Dur)
	r.Runs = 1
	r.Outcome = fmt.Sprintf("Concord: %d delivered+acked, %d errored, **%d silent losses**, %d duplicates; raw TCP: %d sent OK, %d errored, **%d silent losses (%.0f%%)**",
		len(mr.Acked), mr.Failed, silent, dups, len(rr.OK), rr.Failed, rawSilent, 100*float64(rawSilent)/float64(overflowMessages))
	r.Timings = fmt.Sprintf("%d msgs, %d Concord senders / %d raw in flight, backlog %d, %v delay line each way, receiver frozen %v; Concord %s (%d listen overflows), raw %s (%d listen overflows)",
		overflowMessages, overflowSenders, overflowRawConc, overflowBacklog, overflowDelay, overflowFreeze, ms(mr.Dur), overflows, ms(rr.Dur), rawOverflows)
}
