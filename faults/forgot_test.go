package faults

// Scenario 3, seed 004 ("A TCP stuck connection mystery"): the client's
// TCP connection is ESTABLISHED but the server has none, because the
// server forgot it (syncookies with the final handshake ACK lost, or a
// server restart). In a server-speaks-first protocol the client waits
// forever; Concord's dialer speaks first and every handshake stage has a
// deadline.

import (
	"bufio"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
)

// pureACK matches the client's final handshake ACK: a segment with only
// ACK set (data segments carry PSH too).
func pureACK(port int) []string {
	return []string{"-p", "tcp", "--dport", strconv.Itoa(port), "--tcp-flags", "ALL", "ACK", "-j", "DROP"}
}

// anyACK matches every segment from the client after its SYN: the final
// handshake ACK and all data.
func anyACK(port int) []string {
	return []string{"-p", "tcp", "--dport", strconv.Itoa(port), "--tcp-flags", "ACK", "ACK", "-j", "DROP"}
}

// dropped returns the packet count of h's INPUT rules that match dport.
func dropped(t *testing.T, h *netlab.Host, port int) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := h.Run(ctx, "iptables", "-L", "INPUT", "-v", "-x", "-n")
	if err != nil {
		t.Fatalf("iptables -L: %v\n%s", err, out)
	}
	var n uint64
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 2 && f[2] == "DROP" && strings.Contains(sc.Text(), "dpt:"+strconv.Itoa(port)) {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			n += v
		}
	}
	return n
}

func counters(t *testing.T, h *netlab.Host) map[string]uint64 {
	t.Helper()
	c, err := h.TCPCounters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// socketsTo lists h's sockets whose remote or local port is port, towards
// or from other.
func socketsWith(t *testing.T, h *netlab.Host, port uint16) []netlab.Socket {
	t.Helper()
	ss, err := h.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ss, func(s netlab.Socket) bool {
		return s.State == netlab.StateListen || (s.Local.Port() != port && s.Remote.Port() != port)
	})
}

// waitSockets polls until ok accepts the sockets of h with port, within d.
func waitSockets(t *testing.T, h *netlab.Host, port uint16, d time.Duration, ok func([]netlab.Socket) bool) ([]netlab.Socket, bool) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(2 * time.Millisecond) {
		ss := socketsWith(t, h, port)
		if ok(ss) {
			return ss, true
		}
		if time.Now().After(deadline) {
			return ss, false
		}
	}
}

func hasState(st netlab.TCPState) func([]netlab.Socket) bool {
	return func(ss []netlab.Socket) bool {
		return slices.ContainsFunc(ss, func(s netlab.Socket) bool { return s.State == st })
	}
}

// testForgotSyncookies: tcp_syncookies=2 in the server's namespace (a
// SYN-ACK with a cookie, no state kept) and the client's final handshake
// ACK dropped, so only the client knows the connection. The dialer's first
// write carries the ACK number the cookie needs: the server builds the
// connection from it and the upgrade completes at once.
func testForgotSyncookies(t *testing.T, l *lab) {
	const runs = 10
	const bound = 250 * time.Millisecond
	r := l.row(t, "3 server forgot the connection: syncookies=2, final ACK dropped", "004")
	pair := netlab.NewPair(t)
	sysctl(t, pair.B, "net.ipv4.tcp_syncookies=2")
	const port = 44001
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port})
	before := counters(t, pair.B)
	var durs []time.Duration
	var drops uint64
	for run := range runs {
		c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client", Handshake: 3 * time.Second})
		rm := rule(t, pair.B, "INPUT", pureACK(port)...)
		var rc nspeer.ConnectReply
		c.Call(&rc, "connect", s.ID, s.Addr)
		drops += dropped(t, pair.B, port)
		rm()
		if rc.Err != "" {
			t.Fatalf("run %d: connect with the final ACK dropped: %s (%v)", run, rc.Err, rc.Is)
		}
		c.Must(nil, "echo", s.ID, 1024)
		durs = append(durs, rc.Connect)
		r.Runs++
		c.Stop()
	}
	after := counters(t, pair.B)
	sent, recv := after["SyncookiesSent"]-before["SyncookiesSent"], after["SyncookiesRecv"]-before["SyncookiesRecv"]
	r.Outcome = fmt.Sprintf("%d/%d completed by the dialer's first write; %d pure ACKs dropped (the final handshake ACK and later ones), %d cookies sent, %d validated", r.Runs, runs, drops, sent, recv)
	r.Timings = fmt.Sprintf("Connect median %s, max %s (bound %v)", ms(median(durs)), ms(maxDur(durs)), bound)
	if drops < runs {
		t.Errorf("%d pure ACKs dropped in %d runs, want at least one per run (the fault did not happen)", drops, runs)
	}
	if sent < runs || recv < runs {
		t.Errorf("%d syncookies sent and %d validated in %d runs, want at least %d each", sent, recv, runs, runs)
	}
	if m := maxDur(durs); m > bound {
		t.Errorf("slowest Connect %v, want < %v", m, bound)
	}
}

// testForgotRestart: the server is killed and restarted (same key, same
// port) between the SYN-ACK and the client's first segments, which are
// dropped meanwhile; then the path heals. The client's socket is
// ESTABLISHED, the new server knows nothing of it: the client's
// retransmitted first write meets a RST during the election, and Connect
// redials once (host.Config.ResetRetries), reaching the new server. A
// second, forced dial then connects and echoes too.
func testForgotRestart(t *testing.T, l *lab) {
	const runs = 3
	const deadline = 5 * time.Second
	r := l.row(t, "3 server forgot the connection: server restarted after the SYN-ACK", "004")
	pair := netlab.NewPair(t)
	key := filepath.Join(t.TempDir(), "server.key")
	var firsts, retries []time.Duration
	var outcomes []string
	for run := range runs {
		port := 44100 + run
		s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port, Key: key})
		c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client", Handshake: deadline})
		rm := rule(t, pair.B, "INPUT", anyACK(port)...)
		ch, err := c.Send("connect", s.ID, s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if ss, ok := waitSockets(t, pair.A, uint16(port), 2*time.Second, hasState(netlab.StateEstablished)); !ok {
			t.Fatalf("run %d: the client has no ESTABLISHED socket to the server: %v", run, ss)
		}
		s.Kill()
		s2 := s.Restart("server2")
		if ss := socketsWith(t, pair.B, uint16(port)); slices.ContainsFunc(ss, func(s netlab.Socket) bool { return s.State == netlab.StateEstablished }) {
			t.Fatalf("run %d: the restarted server's namespace holds %v, want no established connection", run, ss)
		}
		rm()
		var rc nspeer.ConnectReply
		if err := ch.Await(&rc); err != nil {
			t.Fatal(err)
		}
		outcome := "completed"
		if rc.Err != "" {
			outcome = fmt.Sprintf("failed %v", rc.Is)
			t.Errorf("run %d: Connect failed although it redials after a reset before security: %s", run, rc.Err)
		}
		t.Logf("run %d: first attempt %s after %v: %s", run, outcome, rc.Connect, rc.Err)
		outcomes = append(outcomes, outcome)
		firsts = append(firsts, rc.Connect)
		if rc.Connect > deadline+250*time.Millisecond {
			t.Errorf("run %d: the first attempt took %v, past its %v handshake deadline", run, rc.Connect, deadline)
		}
		var rr nspeer.ConnectReply
		c.Must(&rr, "connect", s2.ID, s2.Addr, "force", "echo")
		retries = append(retries, rr.First)
		r.Runs++
		c.Stop()
		s2.Stop()
	}
	slices.Sort(outcomes)
	r.Outcome = fmt.Sprintf("Connect (reset, one redial): %s; forced redial connected and echoed %d/%d", strings.Join(slices.Compact(outcomes), ", "), r.Runs, runs)
	r.Timings = fmt.Sprintf("first attempt ended after median %s, max %s (handshake deadline %v, includes the server restart); retry→first echo median %s",
		ms(median(firsts)), ms(maxDur(firsts)), deadline, ms(median(retries)))
}

// testForgotSilent: every segment of the client after its SYN is dropped
// for good, so the client's socket is ESTABLISHED and the server never
// learns of it. The dialer must give up at its handshake deadline, not
// later, and a retry after the path heals must succeed.
func testForgotSilent(t *testing.T, l *lab) {
	const runs = 3
	const deadline = 2 * time.Second
	const slack = 300 * time.Millisecond
	r := l.row(t, "3 server forgot the connection: client's segments dropped until its deadline", "004")
	pair := netlab.NewPair(t)
	var fails, retries []time.Duration
	for run := range runs {
		port := 44200 + run
		s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port})
		c := l.prog.Start(t, pair.A, nspeer.Options{Name: "client", Handshake: deadline})
		rm := rule(t, pair.B, "INPUT", anyACK(port)...)
		ch, err := c.Send("connect", s.ID, s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if ss, ok := waitSockets(t, pair.A, uint16(port), 2*time.Second, hasState(netlab.StateEstablished)); !ok {
			t.Fatalf("run %d: the client has no ESTABLISHED socket to the server: %v", run, ss)
		}
		if ss := socketsWith(t, pair.B, uint16(port)); slices.ContainsFunc(ss, func(s netlab.Socket) bool { return s.State == netlab.StateEstablished }) {
			t.Fatalf("run %d: the server holds %v, want no established connection", run, ss)
		}
		var rc nspeer.ConnectReply
		if err := ch.Await(&rc); err != nil {
			t.Fatal(err)
		}
		rm()
		if rc.Err == "" || !rc.Matches("handshake_timeout") {
			t.Errorf("run %d: Connect = %q %v, want a handshake timeout", run, rc.Err, rc.Is)
		}
		if rc.Connect > deadline+slack {
			t.Errorf("run %d: Connect gave up after %v, want within its %v deadline (+%v)", run, rc.Connect, deadline, slack)
		}
		fails = append(fails, rc.Connect)
		var rr nspeer.ConnectReply
		c.Must(&rr, "connect", s.ID, s.Addr, "force", "echo")
		retries = append(retries, rr.First)
		r.Runs++
		c.Stop()
		s.Stop()
	}
	r.Outcome = fmt.Sprintf("%d/%d: handshake timeout at the deadline, retry connected and echoed", r.Runs, runs)
	r.Timings = fmt.Sprintf("gave up after median %s, max %s (deadline %v); retry→first echo median %s",
		ms(median(fails)), ms(maxDur(fails)), deadline, ms(median(retries)))
}
