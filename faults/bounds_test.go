package faults

// Every documented bound, at its default, measured between real processes
// (issue 14's audit): the outbound and inbound handshake timeout (10 s),
// the first-byte timeout (1 s), stream negotiation (10 s) and the graceful
// close (5 s). The keepalive bound (20 s) is the noread-frozen-default
// scenario, the write stall (30 s) noread-stall-default. Each is met when
// the measured time is at least the bound, less boundEarly, and at most
// the bound plus boundSlack. Not here: the duplicate grace (10 s), which
// needs a second connection between two peers while the first carries a
// stream, and the peer program's host only dials when it has no
// connection (FAULTS.md, "Bounds").

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
)

const (
	boundSlack = 500 * time.Millisecond // scheduling, and the control round trip
	boundEarly = 50 * time.Millisecond  // timers never fire early; clocks of two processes
)

// checkBound records d against the bound in r and fails t outside it.
func checkBound(t *testing.T, r *row, what string, d, bound time.Duration) {
	t.Helper()
	r.Runs = 1
	r.Timings = fmt.Sprintf("%s after %s (bound %v, slack −%v/+%v)", what, ms(d), bound, boundEarly, boundSlack)
	if d < bound-boundEarly || d > bound+boundSlack {
		t.Errorf("%s after %v, want within [%v, %v]", what, d, bound-boundEarly, bound+boundSlack)
	}
}

// testBoundHandshakeOut: the server is frozen (SIGSTOP) after it listens,
// so its kernel completes TCP connects and nothing answers; the dialer's
// Connect fails with ErrHandshakeTimeout at the default 10 s.
func testBoundHandshakeOut(t *testing.T, l *lab) {
	r := l.row(t, "bound: outbound handshake against a frozen server (HandshakeTimeout, default 10 s)", "004")
	pair := netlab.NewPair(t)
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: 49001})
	c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client"})
	s.Signal(syscall.SIGSTOP)
	defer s.Signal(syscall.SIGCONT)
	var rc nspeer.ConnectReply
	c.Call(&rc, "connect", s.ID, s.Addr)
	r.Outcome = fmt.Sprintf("Connect: %q %v", rc.Err, rc.Is)
	if !rc.Matches("handshake_timeout") {
		t.Errorf("Connect to a frozen server: %q %v, want a handshake timeout", rc.Err, rc.Is)
	}
	checkBound(t, r, "Connect failed", rc.Connect, 10*time.Second)
}

// testBoundInbound: one raw connection that sends nothing (first-byte
// timeout, default 1 s) or trickles the multistream header a byte every
// 50 ms (handshake timeout, default 10 s); the server closes it.
func testBoundInbound(t *testing.T, l *lab, trickle bool) {
	what, port, bound, opts := "silent inbound connection (FirstByteTimeout, default 1 s)", 49002, time.Second, []any{}
	if trickle {
		what, port, bound, opts = "trickling inbound connection, 1 byte every 50 ms (HandshakeTimeout, default 10 s)", 49003, 10*time.Second, []any{"trickle=50ms"}
	}
	r := l.row(t, "bound: "+what, "002")
	pair := netlab.NewPair(t)
	l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port})
	flooder := l.prog.Start(t, pair.A, nspeer.Options{Name: "flooder"})
	var fr floodReply
	args := append([]any{fmt.Sprintf("%s:%d", pair.B.Addr, port), pair.A.Addr.String(), 1, bound + 5*time.Second, time.Millisecond}, opts...)
	flooder.Must(&fr, "flood", args...)
	r.Outcome = fmt.Sprintf("%d connection: %d closed by the server after its header, %d held", fr.Connected, fr.Dropped, fr.Held)
	if fr.Dropped != 1 {
		t.Fatalf("flood of one: %+v, want it closed by the server", fr)
	}
	checkBound(t, r, "closed by the server", fr.DroppedMax, bound)
}

// testBoundClose: Host.Close with a stream the peer never reads (its
// writer blocked on flow control) returns after the default 5 s graceful
// close.
func testBoundClose(t *testing.T, l *lab) {
	r := l.row(t, "bound: Host.Close with a stream the peer never reads (CloseTimeout, default 5 s)", "003")
	pair := netlab.NewPair(t)
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: 49004})
	c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client"})
	c.Must(nil, "connect", s.ID, s.Addr)
	stall, err := c.Send("stall", s.ID, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the window fills in well under this on a veth
	began := time.Now()
	c.Must(nil, "close")
	took := time.Since(began)
	var sr stallReply
	if err := stall.Await(&sr); err != nil {
		t.Fatal(err)
	}
	r.Outcome = fmt.Sprintf("the stalled write, %d KiB in: %q %v", sr.Written>>10, sr.Err, sr.Is)
	if sr.Err == "" {
		t.Errorf("the stalled write succeeded across the close")
	}
	checkBound(t, r, "Close returned", took, 5*time.Second)
}

// testBoundNegotiation: the server is frozen (SIGSTOP) after the
// connection is up; a new stream's protocol negotiation gets no answer and
// fails at the default 10 s, before keepalive (20 s) would close the
// connection.
func testBoundNegotiation(t *testing.T, l *lab) {
	r := l.row(t, "bound: stream negotiation with a frozen peer (NegotiationTimeout, default 10 s)", "003")
	pair := netlab.NewPair(t)
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: 49007})
	c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client"})
	c.Must(nil, "connect", s.ID, s.Addr, "echo")
	s.Signal(syscall.SIGSTOP)
	defer s.Signal(syscall.SIGCONT)
	var er nspeer.EchoReply
	c.Call(&er, "echo", s.ID, 1)
	r.Outcome = fmt.Sprintf("echo: %q %v", er.Err, er.Is)
	if er.Err == "" {
		t.Fatal("an echo to a frozen peer succeeded")
	}
	checkBound(t, r, "NewStream failed", er.Dur, 10*time.Second)
}
