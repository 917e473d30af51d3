package faults

// Every documented bound, at its default, measured between real processes
// (issue 14's audit): the outbound and inbound handshake timeout (10 s),
// the first-byte timeout (1 s), stream negotiation (10 s), the graceful
// close (5 s), the hello timeout (10 s) and the duplicate grace (10 s).
// The keepalive bound (20 s) is the noread-frozen-default scenario, the
// write stall (30 s) noread-stall-default. Each is met when the measured
// time is at least the bound, less boundEarly, and at most the bound plus
// boundSlack (FAULTS.md, "Bounds").

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/host"
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
	r.Timings = boundTiming(t, what, d, bound)
}

// boundTiming fails t if d is outside the bound's window and returns the
// figure as the table shows it.
func boundTiming(t *testing.T, what string, d, bound time.Duration) string {
	t.Helper()
	if d < bound-boundEarly || d > bound+boundSlack {
		t.Errorf("%s after %v, want within [%v, %v]", what, d, bound-boundEarly, bound+boundSlack)
	}
	return fmt.Sprintf("%s after %s (bound %v, slack −%v/+%v)", what, ms(d), bound, boundEarly, boundSlack)
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
		t.Fatalf("an echo to a frozen peer succeeded (connection %d, %v)", er.Seq, er.Dur)
	}
	checkBound(t, r, "NewStream failed", er.Dur, 10*time.Second)
}

type helloStallReply struct {
	nspeer.Result
	InAfter, OutAfter time.Duration
	InErr, OutErr     string
}

// testBoundHello: a peer that stalls in both halves of the hello
// (hellostall: a bare upgrader, not a host). It reads the server's hello
// proposal and never answers, and it opens a hello stream of its own,
// has it accepted and never sends the message. The server gives up on
// each at the default 10 s, closes the stream and reports a hello_failed
// event with ErrHelloTimeout; the times are the staller's, from the
// half's start as it saw it to the server's close.
func testBoundHello(t *testing.T, l *lab) {
	r := l.row(t, "bound: hello with a peer that stalls in both halves (HelloTimeout, default 10 s)", "003")
	pair := netlab.NewPair(t)
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: 49008})
	c := l.prog.Start(t, pair.A, nspeer.Options{Name: "staller"})
	var hr helloStallReply
	c.Must(&hr, "hellostall", s.ID, s.Addr)
	if hr.InErr != "" || hr.OutErr != "" {
		t.Errorf("the hello streams ended with %q / %q, want the server's close", hr.InErr, hr.OutErr)
	}
	var events []string
	for _, sending := range []bool{true, false} {
		e, ok := s.WaitEvent(5*time.Second, func(e nspeer.Event) bool { return e.Event == "hello_failed" && e.Sending == sending })
		if !ok {
			t.Fatalf("the server reported no failed hello with sending=%v", sending)
		}
		if !e.Matches("hello_timeout") {
			t.Errorf("hello_failed (sending=%v): %q %v, want a hello timeout", sending, e.Reason, e.Is)
		}
		boundTiming(t, fmt.Sprintf("server's hello_failed (sending=%v)", sending), e.Elapsed, host.DefaultHelloTimeout)
		events = append(events, fmt.Sprintf("sending=%v %v after %s", sending, e.Is, ms(e.Elapsed)))
	}
	r.Runs = 1
	r.Outcome = "server's hello_failed events: " + strings.Join(events, "; ")
	r.Timings = boundTiming(t, "server's hello unanswered, stream closed", hr.InAfter, host.DefaultHelloTimeout) +
		"; " + boundTiming(t, "staller's hello never sent, stream closed", hr.OutAfter, host.DefaultHelloTimeout)
}

// testBoundDuplicateGrace (seed 000's reconnect over a silently dead
// path): the client's first connection carries a stream (a sink the
// server never reads) when every packet of it starts being dropped at the
// client. The client (keepalive 500 ms + 500 ms) closes it and dials
// again; the server (keepalive 10 s + 10 s) still holds it and its stream.
// The new connection's hello makes the old one lose on the server: it
// drains for the default grace, 10 s, since its stream stays open, and
// closes.
func testBoundDuplicateGrace(t *testing.T, l *lab) {
	r := l.row(t, "bound: duplicate that lost while carrying a stream, its path dead (DuplicateGrace, default 10 s)", "000")
	pair := netlab.NewPair(t)
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: 49009})
	c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client", KeepAlive: 500 * time.Millisecond, PingTimeout: 500 * time.Millisecond})
	c.Must(nil, "connect", s.ID, s.Addr)
	cs, ss, err := nspeer.Converged(c, s, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	old, oldClient := ss.Conns[0], cs.Conns[0]
	stall, err := c.Send("stall", s.ID, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if st := stateOf(t, s, c); len(st.Conns) == 1 && st.Conns[0].Streams > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server never held the client's stream")
		}
	}
	// The path dies: every packet of the connection dropped at the client.
	lp, rp := tcpPort(t, oldClient.Local), tcpPort(t, oldClient.Remote)
	src, dst := pair.A.Addr.String(), pair.B.Addr.String()
	rmIn := rule(t, pair.A, "INPUT", "-p", "tcp", "-s", dst, "--sport", rp, "-d", src, "--dport", lp, "-j", "DROP")
	rmOut := rule(t, pair.A, "OUTPUT", "-p", "tcp", "-s", src, "--sport", lp, "-d", dst, "--dport", rp, "-j", "DROP")
	if _, ok := c.WaitEvent(5*time.Second, func(e nspeer.Event) bool { return e.Event == "closed" && e.Seq == oldClient.Seq }); !ok {
		t.Fatal("the client's keepalive did not close the dead connection within 5 s")
	}
	var sr stallReply
	if err := stall.Await(&sr); err != nil {
		t.Fatal(err)
	}
	var rc nspeer.ConnectReply
	c.Must(&rc, "connect", s.ID, s.Addr)
	dup, ok := s.WaitEvent(5*time.Second, func(e nspeer.Event) bool { return e.Event == "duplicate" && e.Seq == old.Seq })
	if !ok {
		t.Fatalf("the server never resolved its old connection %d as a duplicate", old.Seq)
	}
	if dup.Immediate || dup.Rule != "sequence" {
		t.Errorf("duplicate event %+v, want the old connection drained by the sequence rule", dup)
	}
	closed, ok := s.WaitEvent(host.DefaultDuplicateGrace+5*time.Second, func(e nspeer.Event) bool { return e.Event == "closed" && e.Seq == old.Seq })
	if !ok {
		t.Fatalf("the server did not close its old connection %d within %v of the resolution", old.Seq, host.DefaultDuplicateGrace+5*time.Second)
	}
	if !closed.Matches("duplicate") {
		t.Errorf("the old connection closed with %q %v, want ErrDuplicate", closed.Reason, closed.Is)
	}
	rmIn()
	rmOut()
	if _, _, err := nspeer.Converged(c, s, time.Second); err != nil {
		t.Errorf("after the grace: %v", err)
	}
	r.Outcome = fmt.Sprintf("client's stream on the dead connection ended %q %v after %d KiB; server: connection %d lost to %d (rule %s), closed %v",
		sr.Err, sr.Is, sr.Written>>10, old.Seq, dup.Survivor, dup.Rule, closed.Is)
	checkBound(t, r, "server closed the loser (stream open)", closed.Time().Sub(dup.Time()), host.DefaultDuplicateGrace)
}
