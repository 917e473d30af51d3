//go:build linux

package netlab

import (
	"context"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// pingPong measures round trips of one byte over c (an echo on the far
// side) and returns the median.
func pingPong(t *testing.T, c net.Conn, rounds int) time.Duration {
	t.Helper()
	rtts := make([]time.Duration, 0, rounds)
	buf := []byte{0}
	for range rounds {
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("ping write: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("pong read: %v", err)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

// TestDelayLine checks that delay lines on both hosts add twice their delay
// to a TCP ping-pong round trip, and that stopping them restores the link.
func TestDelayLine(t *testing.T) {
	p := NewPair(t)
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"ipv4", p.B.Addr}, {"ipv6", p.B.Addr6}} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listenIn(t, p.B, net.JoinHostPort(tc.addr.String(), "0"))
			go echoOne(ln)
			c := dialFrom(t, p.A, ln.Addr().String())

			const d = 20 * time.Millisecond
			base := pingPong(t, c, 20)
			ctx := context.Background()
			la, err := p.A.DelayLine(ctx, d)
			if err != nil {
				t.Fatalf("DelayLine on A: %v", err)
			}
			lb, err := p.B.DelayLine(ctx, d)
			if err != nil {
				t.Fatalf("DelayLine on B: %v", err)
			}
			delayed := pingPong(t, c, 10)
			if err := la.Stop(); err != nil {
				t.Errorf("Stop A: %v", err)
			}
			if err := lb.Stop(); err != nil {
				t.Errorf("Stop B: %v", err)
			}
			after := pingPong(t, c, 20)
			t.Logf("median RTT: %v before, %v with %v each way, %v after", base, delayed, d, after)
			// Each direction holds every packet at least d, so the round
			// trip cannot be shorter than 2d; below 3d rules out a packet
			// held twice, with room for a loaded machine.
			if delayed < 2*d || delayed >= 3*d {
				t.Errorf("RTT with delay lines = %v, want in [%v, %v)", delayed, 2*d, 3*d)
			}
			if after >= d {
				t.Errorf("RTT after Stop = %v, want below %v (the delay must be gone)", after, d)
			}
			if la.Packets() < 10 || lb.Packets() < 10 {
				t.Errorf("packets held: A %d, B %d; want at least the 10 pings and 10 pongs", la.Packets(), lb.Packets())
			}
			if la.Failures()+lb.Failures() != 0 {
				t.Errorf("failures: A %d, B %d; want 0", la.Failures(), lb.Failures())
			}
			// The connection survived the stop: nothing was dropped.
			if err := c.SetReadDeadline(time.Time{}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestDelayLineRejectsNonPositive(t *testing.T) {
	p := NewPair(t)
	if _, err := p.A.DelayLine(context.Background(), 0); err == nil {
		t.Errorf("DelayLine(0): err = nil, want an error")
	}
}

// TestDelayLineStopLosesNothing stops both delay lines in the middle of a
// bulk transfer: every byte must arrive, the kernel's queue must be empty
// when Stop unbinds it (Stop checks), and the link must drop nothing.
//
// TCP's retransmissions are logged, not judged. Stopping while traffic
// flows lets new packets overtake the few still in the queue, and TCP may
// retransmit on that reordering; whether the sender then counts the
// receiver's D-SACKs varies (a run with 45 retransmitted segments, 2
// D-SACKs sent and none counted, and no drop anywhere, failed CI when this
// test judged by them).
func TestDelayLineStopLosesNothing(t *testing.T) {
	p := NewPair(t)
	ln := listenIn(t, p.B, net.JoinHostPort(p.B.Addr.String(), "0"))
	received := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			received <- -1
			return
		}
		defer c.Close()
		n, _ := io.Copy(io.Discard, c)
		received <- n
	}()
	c := dialFrom(t, p.A, ln.Addr().String())
	ctx := context.Background()
	const d = 20 * time.Millisecond
	var lines []*DelayLine
	for _, h := range []*Host{p.A, p.B} {
		l, err := h.DelayLine(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	// Let TCP learn the new round trip first.
	for range 10 {
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * d)
	}
	linksBefore := linkStats(t, p)
	before, err := p.A.TCPCounters()
	if err != nil {
		t.Fatal(err)
	}
	const total = 8 << 20
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write(make([]byte, total))
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		wrote <- err
	}()
	time.Sleep(5 * d)
	held := lines[0].Packets()
	for _, l := range lines {
		if err := l.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}
	if err := <-wrote; err != nil {
		t.Fatalf("write: %v", err)
	}
	if n := <-received; n != total+10*1000 {
		t.Errorf("received %d bytes, want %d", n, total+10*1000)
	}
	linksAfter := linkStats(t, p)
	for i, h := range []*Host{p.A, p.B} {
		b, a := linksBefore[i], linksAfter[i]
		if a.RxDropped != b.RxDropped || a.TxDropped != b.TxDropped {
			t.Errorf("%s's link dropped %d received and %d sent packets during the transfer", h.Name, a.RxDropped-b.RxDropped, a.TxDropped-b.TxDropped)
		}
	}
	if f := lines[0].Failures() + lines[1].Failures(); f != 0 {
		t.Errorf("verdict or parse failures: A %d, B %d; want 0 (a lost verdict is a lost packet)", lines[0].Failures(), lines[1].Failures())
	}
	if held == 0 {
		t.Errorf("the line held no packet of the transfer before Stop; the test proves nothing")
	}
	if after, err := p.A.TCPCounters(); err == nil {
		t.Logf("held %d packets before Stop; sender retransmitted %d segments, counted %d D-SACKed, %d loss probes",
			held, after["RetransSegs"]-before["RetransSegs"], after["TCPDSACKRecvSegs"]-before["TCPDSACKRecvSegs"],
			after["TCPLossProbes"]-before["TCPLossProbes"])
	}
}

// linkStats returns the link counters of A and B.
func linkStats(t *testing.T, p *Pair) [2]LinkStats {
	t.Helper()
	var out [2]LinkStats
	for i, h := range []*Host{p.A, p.B} {
		st, err := h.LinkStats()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = st
	}
	return out
}

func TestParseQueueStatus(t *testing.T) {
	const table = "    0  12345     0 1 65531     0     0       17  1\n    3 999     5 1 65531     0     0      260  1\n"
	st, err := parseQueueStatus(table, 3)
	if err != nil {
		t.Fatal(err)
	}
	if st.waiting != 5 || st.assigned != 260 {
		t.Errorf("queue 3 = %+v, want waiting 5, assigned 260", st)
	}
	if _, err := parseQueueStatus(table, 1); err == nil {
		t.Errorf("queue 1 (absent): err = nil, want an error")
	}
	if _, err := parseQueueStatus("    2 1 x 1 0 0 0 1 1\n", 2); err == nil {
		t.Errorf("non-numeric field: err = nil, want an error")
	}
	if _, err := parseQueueStatus("    2 1 0 1 0\n", 2); err == nil {
		t.Errorf("short line: err = nil, want an error")
	}
}

func TestParseLinkStats(t *testing.T) {
	const dev = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n" +
		" veth0: 8480852     256    0    7    0     0          0         0    11246     167    0    2    0     0       0          0\n"
	st, err := parseLinkStats(dev, "veth0")
	if err != nil {
		t.Fatal(err)
	}
	if want := (LinkStats{RxPackets: 256, RxDropped: 7, TxPackets: 167, TxDropped: 2}); st != want {
		t.Errorf("veth0 = %+v, want %+v", st, want)
	}
	if _, err := parseLinkStats(dev, "eth0"); err == nil {
		t.Errorf("eth0 (absent): err = nil, want an error")
	}
}

func TestParseCounters(t *testing.T) {
	const snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm MaxConn RetransSegs\nTcp: 1 -1 42\n"
	got := map[string]uint64{}
	if err := parseCounters(snmp, "Tcp:", got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["RtoAlgorithm"] != 1 || got["RetransSegs"] != 42 {
		t.Errorf("parseCounters = %v, want RtoAlgorithm 1, RetransSegs 42 (MaxConn -1 skipped)", got)
	}
	for _, bad := range []string{"Tcp: A B\nTcp: 1\n", "Ip: 1\n", "Tcp: A B\n"} {
		if err := parseCounters(bad, "Tcp:", map[string]uint64{}); err == nil {
			t.Errorf("parseCounters(%q): err = nil, want an error", bad)
		}
	}
}
