package faults

// Diagnostics of the flapping scenario (-cluster.trace, -cluster.pcap):
// which pairs settled last after the path returned, what their two ends
// did, and the SYNs and RSTs on the blackholed host's link.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
)

var (
	clusterTrace = flag.Int("cluster.trace", 0, "TestCluster flapping: log the last `K` pairs to settle in each round and their ends' events")
	clusterPcap  = flag.String("cluster.pcap", "", "TestCluster flapping: directory for a tcpdump of SYNs and RSTs on the blackholed host's switch port, one file a round")
)

// flapTimes are the instants of one flapping round.
type flapTimes struct {
	from, installed, restoring, healed time.Time
}

// capture runs tcpdump on the switch port of host i (the bridge side of its
// veth: what reaches the host, and what it sends past its OUTPUT rules) for
// SYNs and RSTs, until stop is called.
func capture(t *testing.T, net *netlab.Cluster, i, round int) (stop func() string) {
	t.Helper()
	if *clusterPcap == "" {
		return func() string { return "" }
	}
	if err := os.MkdirAll(*clusterPcap, 0o755); err != nil {
		t.Fatal(err)
	}
	path, err := filepath.Abs(filepath.Join(*clusterPcap, fmt.Sprintf("flap-r%d-h%d.pcap", round, i)))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", net.Switch, "tcpdump", "-i", fmt.Sprintf("p%d", i), "-U", "-w", path,
		"tcp[tcpflags] & (tcp-syn|tcp-rst|tcp-fin) != 0")
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	time.Sleep(300 * time.Millisecond) // tcpdump opens the interface
	return func() string {
		time.Sleep(200 * time.Millisecond)
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		return path
	}
}

// dumpPcap logs the capture's packets, times relative to healed.
func dumpPcap(t *testing.T, path string, healed time.Time, c *nspeer.Cluster) {
	t.Helper()
	if path == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tcpdump", "-r", path, "-n", "-tt", "-S").Output()
	if err != nil {
		t.Logf("reading %s: %v", path, err)
		return
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		ts, rest, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		sec, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		fmt.Fprintf(&b, "    %+8.3fs %s\n", at.Sub(healed).Seconds(), hostNames(rest, c))
	}
	t.Logf("tcpdump %s (s from healed):\n%s", filepath.Base(path), b.String())
}

// hostNames replaces the cluster's addresses with h<i>.
func hostNames(s string, c *nspeer.Cluster) string {
	for i := c.N() - 1; i >= 0; i-- {
		s = strings.ReplaceAll(s, c.Net.Hosts[i].Addr.String()+".", fmt.Sprintf("h%d.", i))
	}
	return s
}

// traceRound logs the k pairs that settled last in the round and every
// event their two ends reported about each other since ft.from.
func traceRound(t *testing.T, c *nspeer.Cluster, ft flapTimes, k int, round, hole int) {
	t.Helper()
	if k <= 0 {
		return
	}
	rel := func(at int64) string { return fmt.Sprintf("%+8.3fs", time.Unix(0, at).Sub(ft.healed).Seconds()) }
	settled := c.PairSettled(ft.from)
	type ps struct {
		pair [2]int
		at   time.Time
	}
	var all []ps
	for p, at := range settled {
		all = append(all, ps{p, at})
	}
	slices.SortFunc(all, func(a, b ps) int { return b.at.Compare(a.at) })
	var b strings.Builder
	fmt.Fprintf(&b, "round %d (h%d blackholed): rules installed %s, restore began %s (from healed); %d pairs settled\n",
		round, hole, rel(ft.installed.UnixNano()), rel(ft.restoring.UnixNano()), len(all))
	var hist []string
	for _, p := range all {
		if p.pair[0] == hole || p.pair[1] == hole {
			hist = append(hist, fmt.Sprintf("h%d-h%d %s", p.pair[0], p.pair[1], rel(p.at.UnixNano())))
		}
	}
	fmt.Fprintf(&b, "  pairs of h%d, last first: %s\n", hole, strings.Join(hist, ", "))
	for _, p := range all[:min(k, len(all))] {
		i, j := p.pair[0], p.pair[1]
		fmt.Fprintf(&b, "  pair h%d-h%d settled %s\n", i, j, rel(p.at.UnixNano()))
		for _, end := range [][2]int{{i, j}, {j, i}} {
			a, z := end[0], end[1]
			for _, l := range c.Lives(a) {
				for _, e := range l.Proc.Events() {
					if e.Peer != c.IDs[z].String() {
						continue
					}
					if time.Unix(0, e.At).Before(ft.from) {
						if e.Event == "backoff" {
							fmt.Fprintf(&b, "    h%d (before the round) %s%s\n", a, e.Event, eventDetail(e, ft.healed))
						}
						continue
					}
					fmt.Fprintf(&b, "    h%d %s %s%s\n", a, rel(e.At), e.Event, eventDetail(e, ft.healed))
				}
			}
		}
	}
	t.Log(b.String())
}

func eventDetail(e nspeer.Event, healed time.Time) string {
	var f []string
	if e.Seq != 0 {
		f = append(f, fmt.Sprintf("seq=%d", e.Seq))
	}
	if e.Direction != "" {
		f = append(f, e.Direction)
	}
	if e.Election {
		f = append(f, "election")
	}
	if e.Local != "" || e.Remote != "" {
		f = append(f, e.Local+"→"+e.Remote)
	}
	if e.Failures != 0 {
		f = append(f, fmt.Sprintf("failures=%d until=%+.3fs", e.Failures, time.Unix(0, e.Until).Sub(healed).Seconds()))
	}
	if e.Elapsed != 0 {
		f = append(f, "elapsed="+e.Elapsed.Round(time.Millisecond).String())
	}
	if e.Survivor != 0 {
		f = append(f, fmt.Sprintf("survivor=%d rule=%s", e.Survivor, e.Rule))
	}
	if e.Reason != "" {
		f = append(f, fmt.Sprintf("reason=%q", e.Reason))
	}
	if len(f) == 0 {
		return ""
	}
	return " " + strings.Join(f, " ")
}
