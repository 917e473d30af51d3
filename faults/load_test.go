package faults

// Load: a burst of inbound connection attempts from many source addresses
// (ARCHITECTURE.md decision 7, admission). Each attempt connects and sends
// nothing, the way a stalled or hostile dialer holds a handshake slot, and
// closes after loadHold.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/upgrader"
)

const (
	loadIPs    = 50
	loadPerIP  = 40 // 2000 attempts
	loadHold   = 500 * time.Millisecond
	loadSpread = 2 * time.Second
	// loadHotAttempts come from one address first, within 100 ms.
	loadHotAttempts = 100
	// loadRefusedBound: a refused attempt is closed by the server within
	// this time of its connect (the handshake timeout is 10 s).
	loadRefusedBound = time.Second
)

// extraAddrs adds n addresses to h's link, after the pair's own, and
// returns them.
func extraAddrs(t *testing.T, h *netlab.Host, n int) []netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b := h.Addr.As4()
	var addrs []netip.Addr
	for i := range n {
		b[3] = byte(100 + i)
		a := netip.AddrFrom4(b)
		if out, err := h.Run(ctx, "ip", "addr", "add", a.String()+"/24", "dev", h.Link); err != nil {
			t.Fatalf("adding %s: %v\n%s", a, err, out)
		}
		addrs = append(addrs, a)
	}
	return addrs
}

func testLoad(t *testing.T, l *lab) {
	r := l.row(t, fmt.Sprintf("load: %d attempts from one address, then %d from %d addresses in %v", loadHotAttempts, loadIPs*loadPerIP, loadIPs, loadSpread), "002, 004")
	pair := netlab.NewPair(t)
	ips := extraAddrs(t, pair.A, loadIPs)
	var ipList []string
	for _, a := range ips {
		ipList = append(ipList, a.String())
	}
	const port = 48001
	s := l.prog.Start(t, pair.B, nspeer.Options{Name: "server", Port: port})
	flooder := l.prog.Start(t, pair.A, nspeer.Options{Name: "flooder"})
	honest := l.prog.Start(t, pair.A, nspeer.Options{Name: "honest-during"})

	var base nspeer.UsageReply
	s.Must(&base, "usage")
	baseFDs := s.FDs()

	// First one address alone, 100 attempts in 100 ms: the per-address
	// limit must hold (at most 16 handshakes at once from it).
	var hot floodReply
	flooder.Must(&hot, "flood", fmt.Sprintf("%s:%d", pair.B.Addr, port), ipList[0], loadHotAttempts, loadHold, 100*time.Millisecond)
	t.Logf("one address: %+v", hot)
	if max := upgrader.DefaultMaxInboundUpgradesPerIP + upgrader.DefaultMaxInboundProbationPerIP; hot.Held > max {
		t.Errorf("%d attempts from one address held a handshake slot or a probation place at once, want ≤ %d", hot.Held, max)
	}
	// Over the limit a silent newcomer waits on probation, where the
	// address's next one displaces it (closed after the responder's
	// header: "dropped"), or is refused.
	if hot.Refused+hot.Dropped == 0 {
		t.Errorf("no attempt from the single address was refused or displaced: the per-address limit was not reached")
	}

	ch, err := flooder.Send("flood", fmt.Sprintf("%s:%d", pair.B.Addr, port), strings.Join(ipList, ","), loadPerIP, loadHold, loadSpread)
	if err != nil {
		t.Fatal(err)
	}
	// An honest peer connects while the flood runs: it may be refused
	// while the slots are full, so it retries (ForceDial, past the
	// backoff) every 20 ms until it gets through.
	time.Sleep(loadSpread / 4)
	began := time.Now()
	attempts, duringOK := 0, false
	var duringTook time.Duration
	for time.Since(began) < loadSpread && !duringOK {
		attempts++
		var rc nspeer.ConnectReply
		honest.Call(&rc, "connect", s.ID, s.Addr, "force", "echo")
		if rc.Err == "" {
			duringOK, duringTook = true, time.Since(began)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var fr floodReply
	if err := ch.Await(&fr); err != nil {
		t.Fatal(err)
	}
	if fr.Err != "" {
		t.Fatalf("flood: %s", fr.Err)
	}
	// After the flood, a new honest peer connects at the first attempt.
	after := l.prog.Start(t, pair.A, nspeer.Options{Name: "honest-after"})
	var ra nspeer.ConnectReply
	after.Call(&ra, "connect", s.ID, s.Addr, "echo")

	var st stateReply
	s.Must(&st, "state", honest.ID)
	ls := sumListeners(st.Listeners)
	t.Logf("flood: %+v; server listener: %+v; honest during: ok=%v after %d attempts, %v; honest after: %q in %v",
		fr, ls, duringOK, attempts, duringTook, ra.Err, ra.First)

	// Everything the flood and the honest peers left must go: close the
	// honest peers, wait for the server's upgrades and connections to end,
	// then for its descriptors and goroutines to return to the baseline.
	honest.Must(nil, "close")
	after.Must(nil, "close")
	var usage nspeer.UsageReply
	var fds int
	settled := false
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var sh, sa stateReply
		s.Must(&sh, "state", honest.ID)
		s.Must(&sa, "state", after.ID)
		s.Must(&usage, "usage")
		fds = s.FDs()
		inFlight := 0
		for _, x := range sh.Listeners {
			inFlight += x.InFlight
		}
		if len(sh.Conns)+len(sa.Conns) == 0 && inFlight == 0 && fds <= baseFDs && usage.Goroutines <= base.Goroutines {
			settled = true
			break
		}
	}

	r.Runs = 1
	r.Outcome = fmt.Sprintf("one address, %d attempts in 100 ms: %d held a slot (limit %d), %d refused, %d displaced by newer ones; then %d attempts: %d connected (%d refused at once, %d held a slot, %d closed by the server later), %d connect errors; server: peak %d upgrades in flight (limit %d), refused %d in-flight + %d per-IP + %d per-/24 + %d at probation, %d evicted, %d dropped from probation; honest peer during: %v (attempt %d), after: %v",
		hot.Attempts, hot.Held, upgrader.DefaultMaxInboundUpgradesPerIP, hot.Refused, hot.Dropped, fr.Attempts, fr.Connected, fr.Refused, fr.Held, fr.Dropped, fr.ConnectFailed, ls.PeakInFlight, upgrader.DefaultMaxInboundUpgrades,
		ls.RefusedInFlight, ls.RefusedPerIP, ls.RefusedSubnet, ls.RefusedProbation, ls.Evicted, ls.Dropped, okWord(duringOK), attempts, okWord(ra.Err == ""))
	r.Timings = fmt.Sprintf("flood %s; refused closed after p50 %s, p99 %s, max %s (bound %v); honest during connected after %s; fds %d→%d, goroutines %d→%d",
		ms(fr.Dur), ms(fr.RefusedP50), ms(fr.RefusedP99), ms(fr.RefusedMax), loadRefusedBound, ms(duringTook), baseFDs, fds, base.Goroutines, usage.Goroutines)

	if ls.PeakInFlight > upgrader.DefaultMaxInboundUpgrades {
		t.Errorf("peak upgrades in flight %d, want ≤ %d", ls.PeakInFlight, upgrader.DefaultMaxInboundUpgrades)
	}
	if ls.RefusedInFlight+ls.RefusedPerIP+ls.RefusedSubnet+ls.RefusedProbation+ls.Evicted+ls.Dropped == 0 || fr.Refused+fr.Dropped == 0 {
		t.Errorf("nothing refused or displaced (server %d+%d+%d+%d refused, %d evicted, %d dropped from probation; flooder saw %d refused, %d dropped): the flood did not reach the limits",
			ls.RefusedInFlight, ls.RefusedPerIP, ls.RefusedSubnet, ls.RefusedProbation, ls.Evicted, ls.Dropped, fr.Refused, fr.Dropped)
	}
	if fr.RefusedMax > loadRefusedBound {
		t.Errorf("a refused attempt was closed %v after its connect, want < %v", fr.RefusedMax, loadRefusedBound)
	}
	if !duringOK {
		t.Errorf("the honest peer did not connect during the flood (%d attempts over %v)", attempts, loadSpread)
	}
	if ra.Err != "" {
		t.Errorf("the honest peer after the flood: %s", ra.Err)
	}
	if !settled {
		t.Errorf("the server did not return to its baseline within 15 s: fds %d (was %d), goroutines %d (was %d)", fds, baseFDs, usage.Goroutines, base.Goroutines)
	}
}

func okWord(ok bool) string {
	if ok {
		return "connected"
	}
	return "FAILED"
}
