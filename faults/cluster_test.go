package faults

// Issue 17: a whole cluster restarted at once. N hosts, each a peer
// process in its own namespace on one bridge, every host kept connected
// to every other (host.KeepConnected); the scenarios break the mesh in the
// ways a cluster's operator does and measure how long until every pair
// again holds exactly one live connection, the same on both ends.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/internal/svgplot"
)

var (
	clusterN            = flag.Int("cluster.n", 32, "TestCluster: hosts in the cluster (up to netlab.MaxClusterSize)")
	clusterRounds       = flag.Int("cluster.rounds", 10, "TestCluster: rounds of each scenario but the frozen one")
	clusterFrozenRounds = flag.Int("cluster.frozen-rounds", 2, "TestCluster: rounds of the frozen scenario (30 s each)")
	clusterPlots        = flag.String("cluster.plots", "", "TestCluster: directory for the SVG plots (default: the test's temporary directory)")
	clusterOnly         = flag.String("cluster.only", "", "TestCluster: comma-separated scenarios to run (default: all)")
	clusterFlapFor      = flag.Duration("cluster.flap-for", flapFor, "TestCluster: how long the flapping scenario blackholes a host")
	clusterBackoff      = flag.Duration("cluster.backoff", 0, "TestCluster: the hosts' dial backoff base in cold-start, restart-all and rolling (default: host.DefaultBackoffBase)")
)

const (
	// clusterBound is the hard property's bound: every pair has exactly
	// one connection, the same on both ends, within this time of the
	// disturbance's end. Generous: the goals below are what matters.
	clusterBound = 30 * time.Second
	// clusterPoll is how often the test asks every host for its table
	// while it waits; the figures come from the hosts' events, not from
	// the polls.
	clusterPoll = 250 * time.Millisecond
	// Goals (issue 17), reported as measured figures.
	goalRestartAll = 2 * time.Second
	goalRolling    = 500 * time.Millisecond
	goalFlap       = time.Second
	// flapFor is how long the flapping scenario blackholes a host.
	flapFor = 5 * time.Second
	// frozenFor is how long half the cluster is SIGSTOPped.
	frozenFor = 30 * time.Second
	// shortKeepAlive and shortPingTimeout make a blackholed host's
	// connections fail within 1.5 s (the default keepalive would ride out
	// a 5 s blackhole without noticing).
	shortKeepAlive   = 500 * time.Millisecond
	shortPingTimeout = time.Second
)

// clusterResult is one scenario's figures.
type clusterResult struct {
	Scenario string
	What     string // what the convergence time is measured from
	N        int
	Rounds   int
	Conv     []time.Duration // per round: from the reference instant to settled
	Goal     time.Duration   // 0: none
	Counts   nspeer.Counters // summed over the rounds and hosts
	// Goroutines and FDs per host (median, max) after the first and the
	// last round.
	UsageFirst, UsageLast usageFig
	Plot                  string // the SVG's file name, in plotDir
	Notes                 []string
	plotDir               string
}

type usageFig struct {
	GoMed, GoMax, FDMed, FDMax int
	RSSMed, HeapMed            int64 // bytes
}

func usageOf(us []nspeer.UsageReply) usageFig {
	var gs, fs []int
	var rs, hs []int64
	for _, u := range us {
		gs, fs = append(gs, u.Goroutines), append(fs, u.Fds)
		rs, hs = append(rs, u.RSS), append(hs, u.Heap)
	}
	return usageFig{medianOf(gs), slices.Max(gs), medianOf(fs), slices.Max(fs), medianOf(rs), medianOf(hs)}
}

func medianOf[T int | int64](v []T) T {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

func (u usageFig) String() string {
	return fmt.Sprintf("%d/%d goroutines, %d/%d fds, RSS %.1f MiB, heap %.1f MiB", u.GoMed, u.GoMax, u.FDMed, u.FDMax,
		float64(u.RSSMed)/(1<<20), float64(u.HeapMed)/(1<<20))
}

// usageSample is every host's usage at one moment, with the process each
// figure came from (a restarted host's counters start again).
type usageSample struct {
	procs []*nspeer.Proc
	us    []nspeer.UsageReply
}

// soakNote compares three samples (before the rounds, after the first
// half of them, after the second). For each half, over the hosts that
// kept one process through it, it gives the medians of RSS and heap at
// its start and end, and of the CPU each host spent per round. Flat means
// no host grows with the rounds.
func soakNote(a, m, b usageSample, firstHalf, secondHalf int) string {
	half := func(x, y usageSample, rounds int, from int) string {
		var rx, ry, hx, hy, cpu []int64
		for i := range x.us {
			if x.procs[i] != y.procs[i] {
				continue
			}
			rx, ry = append(rx, x.us[i].RSS), append(ry, y.us[i].RSS)
			hx, hy = append(hx, x.us[i].Heap), append(hy, y.us[i].Heap)
			cpu = append(cpu, (y.us[i].CPU-x.us[i].CPU)/int64(rounds))
		}
		if len(cpu) == 0 {
			return fmt.Sprintf("rounds %d–%d: no host kept one process", from, from+rounds-1)
		}
		mib := func(v []int64) float64 { return float64(medianOf(v)) / (1 << 20) }
		return fmt.Sprintf("rounds %d–%d, %d hosts: RSS %.1f → %.1f MiB, heap %.1f → %.1f MiB, CPU %.1f ms per round",
			from, from+rounds-1, len(cpu), mib(rx), mib(ry), mib(hx), mib(hy), float64(medianOf(cpu))/1e6)
	}
	return "soak (medians per host): " + half(a, m, firstHalf, 1) + "; " + half(m, b, secondHalf, firstHalf+1)
}

// round is one measured round, for the plot.
type round struct {
	ref  time.Time
	pts  []nspeer.Point
	conv time.Duration
}

// TestCluster runs the cluster scenarios of issue 17 one after another on
// one cluster of -cluster.n hosts (32 by default; `-cluster.n=100` runs the
// large one) and logs FAULTS.md's cluster table:
//
//	go test -run TestCluster -v -timeout 30m ./faults/ -cluster.plots=faults/plots
func TestCluster(t *testing.T) {
	netlab.Require(t)
	n := *clusterN
	if n < 2 || n > netlab.MaxClusterSize {
		t.Fatalf("-cluster.n=%d: want 2 to %d", n, netlab.MaxClusterSize)
	}
	plots := *clusterPlots
	if plots == "" {
		plots = t.TempDir()
	} else if err := os.MkdirAll(plots, 0o755); err != nil {
		t.Fatal(err)
	}
	l := newLab(t)
	began := time.Now()
	net := netlab.NewCluster(t, n, netlab.ClusterOptions{})
	t.Logf("a cluster of %d namespaces on one bridge in %v", n, time.Since(began))
	var results []*clusterResult
	t.Cleanup(func() { t.Logf("cluster results (N=%d):\n%s", n, clusterTable(results)) })
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *lab, *netlab.Cluster, *clusterResult)
	}{
		{"cold-start", testClusterCold},
		{"restart-all", testClusterRestartAll},
		{"rolling", testClusterRolling},
		{"flapping", testClusterFlapping},
		{"frozen", testClusterFrozen},
	} {
		if *clusterOnly != "" && !slices.Contains(strings.Split(*clusterOnly, ","), sc.name) {
			continue
		}
		r := &clusterResult{Scenario: sc.name, N: n, plotDir: plots}
		if *clusterBackoff != 0 && (sc.name == "cold-start" || sc.name == "restart-all" || sc.name == "rolling") {
			r.Notes = append(r.Notes, fmt.Sprintf("dial backoff base %v", *clusterBackoff))
		}
		results = append(results, r)
		t.Run(sc.name, func(t *testing.T) {
			start := time.Now()
			sc.run(t, l, net, r)
			t.Logf("%s: %d rounds in %v; convergence median %s, max %s; %s", sc.name, r.Rounds, time.Since(start).Round(time.Millisecond),
				ms(median(r.Conv)), ms(maxDur(r.Conv)), countsText(r.Counts, r.Rounds))
		})
		if r.Plot != "" {
			t.Logf("plot: %s", filepath.Join(plots, r.Plot))
		}
	}
}

// converge waits for the hard property and fails the test if it does not
// hold within clusterBound.
func converge(t *testing.T, c *nspeer.Cluster, what string) {
	t.Helper()
	good, why, ok := c.WaitConverged(clusterBound, clusterPoll)
	if !ok {
		t.Fatalf("%s: %d of %d pairs hold one connection, the same on both ends, after %v: %s%s", what, good, c.Pairs(), clusterBound, why, pairHistory(c, why))
	}
}

// pairHistory lists what the two hosts named at the start of why reported
// of each other (the last events of each end's current process), for a
// failure message.
func pairHistory(c *nspeer.Cluster, why string) string {
	var i, j int
	if _, err := fmt.Sscanf(why, "h%d–h%d", &i, &j); err != nil {
		if _, err := fmt.Sscanf(why, "h%d holds %d connections to h%d", &i, new(int), &j); err != nil {
			return ""
		}
	}
	if i < 0 || j < 0 || i >= c.N() || j >= c.N() {
		return ""
	}
	var b strings.Builder
	for _, side := range [][2]int{{i, j}, {j, i}} {
		p := c.Proc(side[0])
		if p == nil {
			continue
		}
		fmt.Fprintf(&b, "\n  h%d's events about h%d:", side[0], side[1])
		var evs []nspeer.Event
		for _, e := range p.Events() {
			if e.Peer == c.IDs[side[1]].String() {
				evs = append(evs, e)
			}
		}
		if len(evs) > 12 {
			evs = evs[len(evs)-12:]
		}
		for _, e := range evs {
			fmt.Fprintf(&b, "\n    %s %s seq %d", e.Time().Format("15:04:05.000"), e.Event, e.Seq)
			switch e.Event {
			case "opened":
				fmt.Fprintf(&b, " %s %s→%s election %v", e.Direction, e.Local, e.Remote, e.Election)
			case "duplicate":
				fmt.Fprintf(&b, " survivor %d rule %s", e.Survivor, e.Rule)
			case "hello_failed":
				fmt.Fprintf(&b, " sending %v after %v: %s", e.Sending, e.Elapsed, e.Reason)
			case "closed":
				fmt.Fprintf(&b, ": %s", e.Reason)
			}
		}
	}
	return b.String()
}

// settle measures a round: the timeline from from, and the time from ref
// to the last moment it reached every pair.
func settle(t *testing.T, c *nspeer.Cluster, from, ref time.Time, what string) round {
	t.Helper()
	pts := c.Timeline(from)
	at, ok := nspeer.Settled(pts, c.Pairs())
	if !ok {
		t.Fatalf("%s: the hosts' events do not end with every pair connected once (last point %+v) although their tables do", what, pts[len(pts)-1])
	}
	return round{ref: ref, pts: pts, conv: max(0, at.Sub(ref))}
}

// snapshot is each host's counters, by its process.
type snapshot map[*nspeer.Proc]nspeer.Counters

func snap(c *nspeer.Cluster) snapshot {
	s := snapshot{}
	for i, k := range c.Counters() {
		s[c.Proc(i)] = k
	}
	return s
}

// since sums, over the hosts, what each counted since s: the whole count
// of a process started after s.
func (s snapshot) since(c *nspeer.Cluster) nspeer.Counters {
	var sum nspeer.Counters
	for i, k := range c.Counters() {
		sum.Add(k.Sub(s[c.Proc(i)]))
	}
	return sum
}

// quietUsage reads every host's usage once the table has been quiet for a
// moment (drains and dials of the round ended).
func quietUsage(c *nspeer.Cluster) usageFig { return usageOf(quietSample(c).us) }

// quietSample is quietUsage's reading, kept per host.
func quietSample(c *nspeer.Cluster) usageSample {
	time.Sleep(500 * time.Millisecond)
	s := usageSample{us: c.Usage()}
	for i := range s.us {
		s.procs = append(s.procs, c.Proc(i))
	}
	return s
}

// soak tracks the samples of a scenario whose hosts persist across rounds:
// before the first round, after half of them, after the last.
type soak struct {
	first, mid usageSample
	half       int
}

func startSoak(c *nspeer.Cluster, r *clusterResult) *soak {
	s := &soak{first: quietSample(c), half: *clusterRounds / 2}
	r.UsageFirst = usageOf(s.first.us)
	return s
}

// after is called after round k (from 0).
func (s *soak) after(c *nspeer.Cluster, k int) {
	if k+1 == s.half {
		s.mid = quietSample(c)
	}
}

// finish takes the last sample and adds the soak note when there were
// enough rounds to halve.
func (s *soak) finish(c *nspeer.Cluster, r *clusterResult) {
	last := quietSample(c)
	r.UsageLast = usageOf(last.us)
	if s.half >= 2 && r.Rounds-s.half >= 2 {
		r.Notes = append(r.Notes, soakNote(s.first, s.mid, last, s.half, r.Rounds-s.half))
	}
}

// checkGrowth fails the test if the hosts' goroutines or descriptors grew
// across the rounds beyond what a busy moment explains.
func checkGrowth(t *testing.T, r *clusterResult) {
	t.Helper()
	f, l := r.UsageFirst, r.UsageLast
	if l.GoMed > f.GoMed+f.GoMed/4+10 || l.FDMed > f.FDMed+f.FDMed/4+4 {
		t.Errorf("per-host usage grew across %d rounds: first %v, last %v", r.Rounds, f, l)
	}
}

// echoAll checks that host 0 reaches every other host with a stream.
func echoAll(t *testing.T, c *nspeer.Cluster) {
	t.Helper()
	for j := 1; j < c.N(); j++ {
		var e nspeer.EchoReply
		c.Proc(0).Call(&e, "echo", c.IDs[j], 64)
		if e.Err != "" {
			t.Errorf("echo from h0 to h%d: %s", j, e.Err)
		}
	}
}

func testClusterCold(t *testing.T, l *lab, net *netlab.Cluster, r *clusterResult) {
	r.What = "last process ready"
	c := l.prog.NewCluster(t, net, nspeer.Options{BackoffBase: *clusterBackoff})
	var rounds []round
	for k := range *clusterRounds {
		from := time.Now()
		last := c.Start()
		converge(t, c, fmt.Sprintf("round %d", k))
		rd := settle(t, c, from, last, fmt.Sprintf("round %d", k))
		rounds = append(rounds, rd)
		r.Conv = append(r.Conv, rd.conv)
		r.Counts.Add(snapshot{}.since(c)) // fresh processes: everything they counted
		u := quietUsage(c)
		if k == 0 {
			r.UsageFirst = u
			echoAll(t, c)
		}
		r.UsageLast = u
		r.Rounds++
		c.Kill()
	}
	r.Plot = writePlot(t, r, rounds, "seconds since the last process became ready", "last ready")
}

func testClusterRestartAll(t *testing.T, l *lab, net *netlab.Cluster, r *clusterResult) {
	r.What = "last process ready"
	r.Goal = goalRestartAll
	c := l.prog.NewCluster(t, net, nspeer.Options{BackoffBase: *clusterBackoff})
	c.Start()
	converge(t, c, "the first start")
	var rounds []round
	for k := range *clusterRounds {
		from := time.Now()
		c.Kill()
		last := c.Start()
		converge(t, c, fmt.Sprintf("round %d", k))
		rd := settle(t, c, from, last, fmt.Sprintf("round %d", k))
		rounds = append(rounds, rd)
		r.Conv = append(r.Conv, rd.conv)
		r.Counts.Add(snapshot{}.since(c))
		u := quietUsage(c)
		if k == 0 {
			r.UsageFirst = u
		}
		r.UsageLast = u
		r.Rounds++
	}
	echoAll(t, c)
	c.Kill()
	r.Plot = writePlot(t, r, rounds, "seconds since the last process became ready", "last ready")
}

func testClusterRolling(t *testing.T, l *lab, net *netlab.Cluster, r *clusterResult) {
	r.What = "restarted process ready"
	r.Goal = goalRolling
	c := l.prog.NewCluster(t, net, nspeer.Options{BackoffBase: *clusterBackoff})
	c.Start()
	converge(t, c, "the first start")
	sk := startSoak(c, r)
	var rounds []round
	for k := range *clusterRounds {
		i := k * c.N() / *clusterRounds % c.N()
		before := snap(c)
		from := time.Now()
		last := c.Start(i) // kills it first
		converge(t, c, fmt.Sprintf("round %d (h%d)", k, i))
		rd := settle(t, c, from, last, fmt.Sprintf("round %d (h%d)", k, i))
		rounds = append(rounds, rd)
		r.Conv = append(r.Conv, rd.conv)
		r.Counts.Add(before.since(c))
		r.Rounds++
		sk.after(c, k)
	}
	sk.finish(c, r)
	checkGrowth(t, r)
	echoAll(t, c)
	c.Kill()
	r.Plot = writePlot(t, r, rounds, "seconds since the restarted process became ready", "ready")
}

func testClusterFlapping(t *testing.T, l *lab, net *netlab.Cluster, r *clusterResult) {
	r.What = "path restored"
	r.Goal = goalFlap
	r.Notes = append(r.Notes, fmt.Sprintf("keepalive %v, ping timeout %v; blackhole %v", shortKeepAlive, shortPingTimeout, *clusterFlapFor))
	opts := nspeer.Options{KeepAlive: shortKeepAlive, PingTimeout: shortPingTimeout}
	if *clusterTrace > 0 {
		opts.Args = []string{"-trace"}
	}
	c := l.prog.NewCluster(t, net, opts)
	c.Start()
	converge(t, c, "the first start")
	sk := startSoak(c, r)
	var rounds []round
	broke := 0
	for k := range *clusterRounds {
		i := k * c.N() / *clusterRounds % c.N()
		before := snap(c)
		stopCapture := capture(t, net, i, k)
		from := time.Now()
		restore := blackhole(t, net.Hosts[i])
		installed := time.Now()
		time.Sleep(*clusterFlapFor)
		restoring := time.Now()
		if err := restore(); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		converge(t, c, fmt.Sprintf("round %d (h%d)", k, i))
		rd := settle(t, c, from, healed, fmt.Sprintf("round %d (h%d)", k, i))
		traceRound(t, c, flapTimes{from, installed, restoring, healed}, *clusterTrace, k, i)
		dumpPcap(t, stopCapture(), healed, c)
		if minGood(rd.pts) < c.Pairs() {
			broke++
		}
		rounds = append(rounds, rd)
		r.Conv = append(r.Conv, rd.conv)
		r.Counts.Add(before.since(c))
		r.Rounds++
		sk.after(c, k)
	}
	r.Notes = append(r.Notes, fmt.Sprintf("the mesh broke in %d of %d rounds", broke, r.Rounds))
	sk.finish(c, r)
	checkGrowth(t, r)
	echoAll(t, c)
	c.Kill()
	r.Plot = writePlot(t, r, rounds, "seconds since the path was restored", "restored")
}

func testClusterFrozen(t *testing.T, l *lab, net *netlab.Cluster, r *clusterResult) {
	r.What = "processes resumed"
	r.Notes = append(r.Notes, fmt.Sprintf("h0..h%d SIGSTOPped for %v; default keepalive", len(net.Hosts)/2-1, frozenFor))
	c := l.prog.NewCluster(t, net, nspeer.Options{})
	c.Start()
	converge(t, c, "the first start")
	r.UsageFirst = quietUsage(c)
	half := make([]int, c.N()/2)
	for i := range half {
		half[i] = i
	}
	var rounds []round
	for k := range *clusterFrozenRounds {
		before := snap(c)
		from := time.Now()
		c.Signal(syscall.SIGSTOP, half...)
		time.Sleep(frozenFor)
		c.Signal(syscall.SIGCONT, half...)
		resumed := time.Now()
		converge(t, c, fmt.Sprintf("round %d", k))
		rd := settle(t, c, from, resumed, fmt.Sprintf("round %d", k))
		rounds = append(rounds, rd)
		r.Conv = append(r.Conv, rd.conv)
		r.Counts.Add(before.since(c))
		r.Rounds++
	}
	r.UsageLast = quietUsage(c)
	checkGrowth(t, r)
	echoAll(t, c)
	c.Kill()
	r.Plot = writePlot(t, r, rounds, "seconds since the frozen processes resumed", "resumed")
}

// blackhole makes h vanish until the returned function restores it.
func blackhole(t *testing.T, h *netlab.Host) func() error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	restore, err := h.Blackhole(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return restore
}

func minGood(pts []nspeer.Point) int {
	m := pts[0].Good
	for _, p := range pts {
		m = min(m, p.Good)
	}
	return m
}

// writePlot draws the scenario's median and slowest rounds, x in seconds
// from each round's reference instant, and returns the file's name.
func writePlot(t *testing.T, r *clusterResult, rounds []round, xlabel, mark string) string {
	t.Helper()
	if len(rounds) == 0 {
		return ""
	}
	order := make([]int, len(rounds))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(rounds[a].conv - rounds[b].conv) })
	med, worst := order[len(order)/2], order[len(order)-1]
	pairs := r.N * (r.N - 1) / 2
	series := func(rd round, name string) svgplot.Series {
		s := svgplot.Series{Name: name, Steps: true}
		for _, p := range rd.pts {
			s.Points = append(s.Points, svgplot.XY{X: p.T.Sub(rd.ref).Seconds(), Y: float64(p.Good)})
		}
		return s
	}
	ch := svgplot.Chart{
		Title:  fmt.Sprintf("%s, N=%d: pairs with one connection, same on both ends", r.Scenario, r.N),
		XLabel: xlabel,
		YLabel: "connected pairs",
		Series: []svgplot.Series{
			series(rounds[med], fmt.Sprintf("concord, median round (%s)", ms(rounds[med].conv))),
		},
		Marks: []svgplot.Mark{{X: 0, Label: mark}},
	}
	anyS := svgplot.Series{Name: "median round: ≥ 1 connection at each end", Color: "#ff7f0e", Steps: true}
	for _, p := range rounds[med].pts {
		anyS.Points = append(anyS.Points, svgplot.XY{X: p.T.Sub(rounds[med].ref).Seconds(), Y: float64(p.Any)})
	}
	ch.Series = append(ch.Series, anyS)
	if worst != med {
		s := series(rounds[worst], fmt.Sprintf("concord, slowest round (%s)", ms(rounds[worst].conv)))
		s.Color = "#9ecae1"
		ch.Series = append(ch.Series, s)
	}
	xmin, xmax := 0.0, 0.0
	for _, s := range ch.Series {
		xmin = min(xmin, s.Points[0].X)
		xmax = max(xmax, s.Points[len(s.Points)-1].X)
	}
	if r.Goal > 0 {
		ch.Marks = append(ch.Marks, svgplot.Mark{X: r.Goal.Seconds(), Label: "goal " + r.Goal.String()})
		xmax = max(xmax, r.Goal.Seconds())
	}
	ch.XMin, ch.XMax = xmin, xmax+0.1*(xmax-xmin)+0.05
	ch.Series = append(ch.Series, svgplot.Series{Name: fmt.Sprintf("all %d pairs", pairs), Color: "#888", Dashed: true,
		Points: []svgplot.XY{{X: ch.XMin, Y: float64(pairs)}, {X: ch.XMax, Y: float64(pairs)}}})
	if r.Scenario == "rolling" || r.Scenario == "flapping" {
		lo := float64(pairs) - 1.5*float64(r.N-1)
		ch.YMin, ch.YMax = max(0, lo), float64(pairs)+0.05*float64(r.N)
	}
	name := fmt.Sprintf("cluster-%s-n%d.svg", r.Scenario, r.N)
	f, err := os.Create(filepath.Join(r.plotDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ch.WriteSVG(f); err != nil {
		t.Fatal(err)
	}
	return name
}

// countsText is the counts per round.
func countsText(k nspeer.Counters, rounds int) string {
	if rounds == 0 {
		return ""
	}
	per := func(v int) string { return fmt.Sprintf("%.1f", float64(v)/float64(rounds)) }
	return fmt.Sprintf("per round: %s opened, %s simultaneous opens, %s elections (%s tie breaks), %s ties, %s duplicates resolved, %s dial failures (redials), %s keepalive failures",
		per(k.Opened), per(k.Simopens), per(k.Elections), per(k.TieBreaks), per(k.Ties), per(k.Dups()), per(k.DialFailures), per(k.KeepaliveFailures))
}

// clusterTable renders the results as FAULTS.md's cluster table.
func clusterTable(rs []*clusterResult) string {
	var b strings.Builder
	b.WriteString("| N | scenario | from | rounds | median | max | goal | within goal | per round: opened / simopens / elections / ties / duplicates / dial failures / keepalive failures | per host, first → last round (median/max) | plot |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		goal, within := "–", "–"
		if r.Goal > 0 {
			goal = r.Goal.String()
			n := 0
			for _, d := range r.Conv {
				if d <= r.Goal {
					n++
				}
			}
			within = fmt.Sprintf("%d/%d", n, len(r.Conv))
		}
		per := func(v int) string {
			if r.Rounds == 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f", float64(v)/float64(r.Rounds))
		}
		k := r.Counts
		fmt.Fprintf(&b, "| %d | %s | %s | %d | %s | %s | %s | %s | %s / %s / %s / %s / %s / %s / %s | %s → %s | %s |\n",
			r.N, r.Scenario, r.What, r.Rounds, ms(median(r.Conv)), ms(maxDur(r.Conv)), goal, within,
			per(k.Opened), per(k.Simopens), per(k.Elections), per(k.Ties), per(k.Dups()), per(k.DialFailures), per(k.KeepaliveFailures),
			r.UsageFirst, r.UsageLast, r.Plot)
		for _, note := range r.Notes {
			fmt.Fprintf(&b, "|   | ↳ %s | | | | | | | | | |\n", note)
		}
	}
	return b.String()
}
