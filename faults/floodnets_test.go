package faults

// Flood from many subnets: issue 14's attack. Silent connections from 200
// source addresses, each in its own /24, so neither the per-address (16)
// nor the per-/24 (32) limit refuses any of them and only the overall
// limit (64 upgrades in flight) stands between them and the pool. Before
// admission evicted (ARCHITECTURE.md decision 7), this kept every honest
// peer out (issue 14 measured 0/15). An honest peer now displaces the
// least-advanced silent upgrade and gets through.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/upgrader"
)

const (
	// floodNetsIPs source addresses 10.200.i.1, i < floodNetsIPs: one per
	// /24, all under floodNetsCover.
	floodNetsIPs   = 200
	floodNetsPerIP = 10 // 2000 silent sockets
	// floodNetsHold is longer than the server's 1 s first-byte timeout,
	// so each silent socket holds its slot until the server ends it.
	floodNetsHold   = 5 * time.Second
	floodNetsSpread = 4 * time.Second
	// floodNetsHonest single connect+echo attempts, each from a fresh
	// honest host, at instants spread evenly over the flood's middle
	// (from floodNetsSpread/8 to 7/8 of it), while the pool is full.
	floodNetsHonest = 15
	// floodNetsMinOK: eviction lets every honest attempt displace a
	// silent upgrade (the honest peer's first byte puts it ahead of every
	// silent one at once), so all should get through; the one attempt
	// of slack covers a machine starved by the parallel scenarios under
	// -race, not admission: a second failure means the pool kept an
	// honest peer out. Issue 14 measured 0/15 before eviction.
	floodNetsMinOK = 14
	// floodNetsHonestHandshake bounds each honest attempt's upgrade (the
	// TCP connect is bounded by the host's dial timeout, 5 s).
	floodNetsHonestHandshake = 3 * time.Second
	// floodNetsHonestBound: issue 14 asks that each honest connect +
	// ping during an attack succeed within 1 s.
	floodNetsHonestBound = time.Second
)

var floodNetsCover = netip.MustParsePrefix("10.200.0.0/16")

// subnetAddrs adds n addresses to h's link, each in its own /24 of
// floodNetsCover, and routes floodNetsCover back to h from its peer in
// pair.
func subnetAddrs(t *testing.T, pair *netlab.Pair, h *netlab.Host, n int) []netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := floodNetsCover.Addr().As4()
	var addrs []netip.Addr
	var batch strings.Builder
	for i := range n {
		b := base
		b[2], b[3] = byte(i), 1
		a := netip.AddrFrom4(b)
		fmt.Fprintf(&batch, "addr add %s/32 dev %s\n", a, h.Link)
		addrs = append(addrs, a)
	}
	// One ip process for all of them (ip -batch), not n.
	file := filepath.Join(t.TempDir(), "addrs")
	if err := os.WriteFile(file, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := h.Run(ctx, "ip", "-batch", file); err != nil {
		t.Fatalf("adding %d addresses: %v\n%s", n, err, out)
	}
	peer := pair.Peer(h)
	if out, err := peer.Run(ctx, "ip", "route", "add", floodNetsCover.String(), "via", h.Addr.String(), "dev", peer.Link); err != nil {
		t.Fatalf("routing %s back to %s: %v\n%s", floodNetsCover, h.Name, err, out)
	}
	return addrs
}

// testFloodManySubnets runs the flood with silent sockets (trickle 0) or
// sockets that trickle the multistream header one byte every trickle,
// which pass the first-byte timeout and keep their handshakes alive.
func testFloodManySubnets(t *testing.T, l *lab, trickle time.Duration) {
	what, port, opts := "silent sockets", 48002, []any(nil)
	if trickle > 0 {
		what, port, opts = fmt.Sprintf("sockets trickling the multistream header (1 byte every %v)", trickle), 48003, []any{fmt.Sprintf("trickle=%v", trickle)}
	}
	r := l.row(t, fmt.Sprintf("flood from many subnets: %d %s from %d addresses in %d /24s over %v, %d honest connects during it",
		floodNetsIPs*floodNetsPerIP, what, floodNetsIPs, floodNetsIPs, floodNetsSpread, floodNetsHonest), "002, 004")
	pair := netlab.NewPair(t)
	ips := subnetAddrs(t, pair, pair.A, floodNetsIPs)
	var ipList []string
	for _, a := range ips {
		ipList = append(ipList, a.String())
	}
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port})
	flooder := l.prog.Start(t, pair.A, nspeer.Options{Name: "flooder"})
	// One host per honest attempt: a host that is connected answers
	// Connect with its connection, so each attempt needs a fresh one to
	// dial (and pass admission) again. They are started before the
	// flood so that their start-up does not eat into it.
	honest := make([]*nspeer.Proc, floodNetsHonest)
	for i := range honest {
		honest[i] = l.prog.Start(t, pair.A, nspeer.Options{Name: fmt.Sprintf("honest-%d", i), Handshake: floodNetsHonestHandshake})
	}

	ch, err := flooder.Send("flood", append([]any{fmt.Sprintf("%s:%d", pair.B.Addr, port), strings.Join(ipList, ","), floodNetsPerIP, floodNetsHold, floodNetsSpread}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	// Each honest attempt is scheduled at its instant (connect's at=), so
	// a slow one does not delay the others.
	began := time.Now()
	pending := make([]nspeer.Pending, floodNetsHonest)
	for i, h := range honest {
		at := began.Add(floodNetsSpread/8 + time.Duration(i)*(floodNetsSpread*3/4)/(floodNetsHonest-1))
		if pending[i], err = h.Send("connect", s.ID, s.Addr, "force", "echo", fmt.Sprintf("at=%d", at.UnixNano())); err != nil {
			t.Fatal(err)
		}
	}
	// Sample the server's upgrades in flight while the honest attempts
	// run: evidence that the pool was full when they came (bounded: at
	// most 8 samples within the spread).
	sampledMax := 0
	for i := 0; i < 8 && time.Since(began) < floodNetsSpread*7/8; i++ {
		time.Sleep(floodNetsSpread / 10)
		var st stateReply
		s.Must(&st, "state", honest[0].ID)
		n := 0
		for _, x := range st.Listeners {
			n += x.InFlight
		}
		sampledMax = max(sampledMax, n)
	}

	var took []time.Duration
	var failures []string
	for i, p := range pending {
		var rc nspeer.ConnectReply
		if err := p.Await(&rc); err != nil {
			t.Fatal(err)
		}
		if rc.Err != "" {
			failures = append(failures, fmt.Sprintf("attempt %d (at +%v): %s %v after %v", i, time.Unix(0, rc.Began).Sub(began).Round(time.Millisecond), rc.Err, rc.Is, rc.Connect))
			continue
		}
		took = append(took, rc.First)
	}
	var fr floodReply
	if err := ch.Await(&fr); err != nil {
		t.Fatal(err)
	}
	if fr.Err != "" {
		t.Fatalf("flood: %s", fr.Err)
	}

	var st stateReply
	s.Must(&st, "state", honest[0].ID)
	ls := sumListeners(st.Listeners)
	t.Logf("flood: %+v; server listener: %+v; sampled in flight max %d; honest: %d/%d, connect→echo %v; failures: %q",
		fr, ls, sampledMax, len(took), floodNetsHonest, took, failures)

	r.Runs = 1
	r.Outcome = fmt.Sprintf("honest peers: **%d/%d** connected and echoed%s; flood: %d attempts, %d connected (%d closed by the server before a byte, %d after, %d held until %v), %d connect errors; server: peak %d upgrades in flight (limit %d, sampled during the honest attempts: max %d), %d evicted, refused %d in-flight + %d per-IP + %d per-/24",
		len(took), floodNetsHonest, failureNote(failures), fr.Attempts, fr.Connected, fr.Refused, fr.Dropped, fr.Held, floodNetsHold, fr.ConnectFailed,
		ls.PeakInFlight, upgrader.DefaultMaxInboundUpgrades, sampledMax, ls.Evicted, ls.RefusedInFlight, ls.RefusedPerIP, ls.RefusedSubnet)
	r.Timings = fmt.Sprintf("flood %s; honest connect→first echo p50 %s, max %s (bound %v; each attempt's handshake bounded by %v)",
		ms(fr.Dur), ms(median(took)), ms(maxDur(took)), floodNetsHonestBound, floodNetsHonestHandshake)

	if len(took) < floodNetsMinOK {
		t.Errorf("%d of %d honest attempts connected and echoed during the flood, want ≥ %d; failures: %s", len(took), floodNetsHonest, floodNetsMinOK, strings.Join(failures, "; "))
	}
	if m := maxDur(took); m > floodNetsHonestBound {
		t.Errorf("an honest attempt took %v from its connect to its first echo, want ≤ %v", m, floodNetsHonestBound)
	}
	if ls.PeakInFlight > upgrader.DefaultMaxInboundUpgrades {
		t.Errorf("peak upgrades in flight %d, want ≤ %d", ls.PeakInFlight, upgrader.DefaultMaxInboundUpgrades)
	}
	if ls.Evicted == 0 {
		t.Errorf("no upgrade was evicted: the flood did not fill the pool (peak %d)", ls.PeakInFlight)
	}
}

// sumListeners adds up the counters of a server's listeners; PeakInFlight
// is the largest of theirs.
func sumListeners(xs []upgrader.ListenerStats) upgrader.ListenerStats {
	var ls upgrader.ListenerStats
	for _, x := range xs {
		ls.Accepted += x.Accepted
		ls.Upgraded += x.Upgraded
		ls.Failed += x.Failed
		ls.RefusedInFlight += x.RefusedInFlight
		ls.RefusedPerIP += x.RefusedPerIP
		ls.RefusedSubnet += x.RefusedSubnet
		ls.Evicted += x.Evicted
		ls.RefusedBacklog += x.RefusedBacklog
		ls.RefusedGated += x.RefusedGated
		ls.InFlight += x.InFlight
		ls.PeakInFlight = max(ls.PeakInFlight, x.PeakInFlight)
	}
	return ls
}

func failureNote(failures []string) string {
	if len(failures) == 0 {
		return ""
	}
	return " (failed: " + strings.Join(failures, "; ") + ")"
}
