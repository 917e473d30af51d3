// Package cluster runs issue 17's cluster scenarios — cold start of the
// full mesh and restart of every host at once — with three
// implementations on one netlab cluster: Concord's hosts (faults/nspeer),
// go-libp2p v0.52 hosts on go-libp2p's TCP transport (lppeer), and the
// same go-libp2p hosts on the Concord transport (lppeer -transport
// concord, the libp2p module), and plots them:
//
//	go test -run TestClusterCompare -v -timeout 20m ./cluster/ -cluster.plots=$PWD/../faults/plots
//
// Both programs speak the harness's control protocol (internal/nspeer), so
// the same events give the same figures: the time from the last process
// ready until every pair holds at least one connection at each end, and
// until every pair holds exactly one, the same TCP connection on both ends.
// go-libp2p's swarm resolves no duplicates, on either transport, so a pair
// that crossed dials may keep two connections; for both go-libp2p rows the
// test reports how many, it does not fail on them. It fails if either
// go-libp2p does not connect every pair within 30 s, or Concord does not
// reach exactly one connection per pair within 30 s.
package cluster

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/internal/svgplot"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	clusterN      = flag.Int("cluster.n", 32, "hosts in the cluster")
	clusterRounds = flag.Int("cluster.rounds", 3, "rounds of each scenario and implementation")
	clusterPlots  = flag.String("cluster.plots", "", "directory for the SVG plots (default: the test's temporary directory)")
)

const (
	bound = 30 * time.Second
	poll  = 250 * time.Millisecond
	// settleFor is how long go-libp2p gets after every pair is connected
	// before its duplicates are counted.
	settleFor = 2 * time.Second
	lppeerPkg = "github.com/concordp2p/concord/interop/cluster/lppeer"
)

type impl struct {
	name, short string // the table's name, the subtest's
	prog        *nspeer.Program
	opts        nspeer.Options
	concord     bool // Concord's host: exactly one per pair is asserted
	elects      bool // the transport runs simopen elections (Concord's)
	lppeerOnTpt bool // lppeer on the Concord transport: counts fallbacks
}

type roundFig struct {
	ref            time.Time
	pts            []nspeer.Point
	anyAt, goodAt  time.Duration // -1: not reached
	good, extra    int           // at the end of the round
	opened, dialFl int
	elections      int
	fallbacks      int // lppeer on the Concord transport only
}

type result struct {
	impl, scenario string
	elects         bool
	rounds         []roundFig
}

func TestClusterCompare(t *testing.T) {
	netlab.Require(t)
	n := *clusterN
	plots := *clusterPlots
	if plots == "" {
		plots = t.TempDir()
	} else if err := os.MkdirAll(plots, 0o755); err != nil {
		t.Fatal(err)
	}
	net := netlab.NewCluster(t, n, netlab.ClusterOptions{})
	lp := nspeer.Build(t, nspeer.BuildConfig{Package: lppeerPkg})
	impls := []impl{
		{name: "concord", short: "concord", prog: nspeer.Build(t, nspeer.BuildConfig{}), concord: true, elects: true},
		{name: "go-libp2p v0.52", short: "go-libp2p", prog: lp},
		{name: "go-libp2p v0.52 on Concord", short: "go-libp2p-on-concord", prog: lp,
			opts: nspeer.Options{Args: []string{"-transport=concord"}}, elects: true, lppeerOnTpt: true},
	}
	var results []*result
	t.Cleanup(func() { t.Logf("cluster comparison (N=%d):\n%s", n, table(results)) })
	for _, sc := range []string{"cold-start", "restart-all"} {
		var scRes []*result
		for _, im := range impls {
			r := &result{impl: im.name, scenario: sc, elects: im.elects}
			results = append(results, r)
			scRes = append(scRes, r)
			t.Run(sc+"/"+im.short, func(t *testing.T) { run(t, net, im, sc, r) })
		}
		writePlot(t, plots, n, sc, scRes)
	}
}

func run(t *testing.T, net *netlab.Cluster, im impl, sc string, r *result) {
	c := im.prog.NewCluster(t, net, im.opts)
	if sc == "restart-all" {
		c.Start()
		wait(t, c, im, "the first start")
	}
	for k := range *clusterRounds {
		from := time.Now()
		if sc == "restart-all" {
			c.Kill()
		}
		last := c.Start()
		good, extra := wait(t, c, im, fmt.Sprintf("round %d", k))
		pts := c.Timeline(from)
		f := roundFig{ref: last, pts: pts, anyAt: -1, goodAt: -1, good: good, extra: extra}
		// When every pair last became connected (in restart-all, the
		// timeline begins connected, before the kill).
		if k := len(pts); pts[k-1].Any == c.Pairs() {
			for k > 0 && pts[k-1].Any == c.Pairs() {
				k--
			}
			f.anyAt = max(0, pts[k].T.Sub(last))
		}
		if at, ok := nspeer.Settled(pts, c.Pairs()); ok {
			f.goodAt = max(0, at.Sub(last))
		}
		for _, k := range c.Counters() {
			f.opened += k.Opened
			f.dialFl += k.DialFailures
			f.elections += k.Elections
		}
		if im.lppeerOnTpt {
			for i := range c.N() {
				var k struct {
					nspeer.Result
					Fallbacks int
				}
				c.Proc(i).Must(&k, "counters")
				f.fallbacks += k.Fallbacks
			}
		}
		r.rounds = append(r.rounds, f)
		more := ""
		if im.elects {
			more += fmt.Sprintf(", %d elections", f.elections)
		}
		if im.lppeerOnTpt {
			more += fmt.Sprintf(", %d dials from an ephemeral port after the kernel refused the listen port's 4-tuple", f.fallbacks)
		}
		t.Logf("round %d: all connected after %v, exactly one after %v; %d of %d pairs with exactly one, %d extra connections; %d opened, %d dial failures%s",
			k, f.anyAt, f.goodAt, good, c.Pairs(), extra, f.opened, f.dialFl, more)
		if sc == "cold-start" {
			c.Kill()
		}
	}
	c.Kill()
}

// wait waits for the round's end: Concord's hard property, or, for either
// go-libp2p, every pair connected and settleFor more. It returns the pairs with
// exactly one connection and the extra connections then.
func wait(t *testing.T, c *nspeer.Cluster, im impl, what string) (good, extra int) {
	t.Helper()
	if im.concord {
		good, why, ok := c.WaitConverged(bound, poll)
		if !ok {
			t.Fatalf("%s: concord: %d of %d pairs after %v: %s", what, good, c.Pairs(), bound, why)
		}
		return good, 0
	}
	deadline := time.Now().Add(bound)
	for {
		g, any, _, why := c.CheckMirrored()
		if any == c.Pairs() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: %d of %d pairs connected after %v (%d with exactly one): %s", what, im.name, any, c.Pairs(), bound, g, why)
		}
		time.Sleep(poll)
	}
	time.Sleep(settleFor)
	good, _, extra, _ = c.CheckMirrored()
	return good, extra
}

func durs(r *result, f func(roundFig) time.Duration) (med, mx time.Duration, reached int) {
	var ds []time.Duration
	for _, x := range r.rounds {
		if d := f(x); d >= 0 {
			ds = append(ds, d)
		}
	}
	if len(ds) == 0 {
		return -1, -1, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[len(ds)-1], len(ds)
}

func msOr(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func table(rs []*result) string {
	var b strings.Builder
	b.WriteString("| scenario | implementation | rounds | all pairs connected: median / max (rounds in which the events show it) | exactly one per pair: median / max (rounds reached) | pairs with exactly one at the end (median) | extra connections at the end (median) | opened per round | dial failures per round | elections per round |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if len(r.rounds) == 0 {
			continue
		}
		am, ax, an := durs(r, func(f roundFig) time.Duration { return f.anyAt })
		gm, gx, gn := durs(r, func(f roundFig) time.Duration { return f.goodAt })
		var goods, extras []int
		op, df, el := 0, 0, 0
		for _, f := range r.rounds {
			goods, extras = append(goods, f.good), append(extras, f.extra)
			op, df, el = op+f.opened, df+f.dialFl, el+f.elections
		}
		slices.Sort(goods)
		slices.Sort(extras)
		k := len(r.rounds)
		elections := "–" // go-libp2p's TCP holds none
		if r.elects {
			elections = fmt.Sprintf("%.1f", float64(el)/float64(k))
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s / %s (%d/%d) | %s / %s (%d/%d) | %d | %d | %.1f | %.1f | %s |\n", r.scenario, r.impl, k,
			msOr(am), msOr(ax), an, k, msOr(gm), msOr(gx), gn, k, goods[k/2], extras[k/2], float64(op)/float64(k), float64(df)/float64(k), elections)
	}
	return b.String()
}

// writePlot draws each implementation's median round (by the time to all
// pairs connected): exactly one connection per pair, solid; at least one,
// dashed.
func writePlot(t *testing.T, dir string, n int, sc string, rs []*result) {
	t.Helper()
	ch := svgplot.Chart{
		Title:  fmt.Sprintf("%s, N=%d: Concord, go-libp2p, go-libp2p on Concord", sc, n),
		XLabel: "seconds since the last process became ready",
		YLabel: "pairs",
		Marks:  []svgplot.Mark{{X: 0, Label: "last ready"}},
	}
	colors := []string{"#1f77b4", "#d62728", "#2ca02c"}
	xmin, xmax := 0.0, 1.0
	for i, r := range rs {
		if len(r.rounds) == 0 {
			continue
		}
		rounds := slices.Clone(r.rounds)
		slices.SortFunc(rounds, func(a, b roundFig) int { return int(a.anyAt - b.anyAt) })
		med := rounds[len(rounds)/2]
		one := svgplot.Series{Name: r.impl + ": exactly one connection", Color: colors[i%len(colors)], Steps: true}
		anyS := svgplot.Series{Name: r.impl + ": at least one at each end", Color: colors[i%len(colors)], Steps: true, Dashed: true}
		for _, p := range med.pts {
			x := p.T.Sub(med.ref).Seconds()
			xmin, xmax = min(xmin, x), max(xmax, x)
			one.Points = append(one.Points, svgplot.XY{X: x, Y: float64(p.Good)})
			anyS.Points = append(anyS.Points, svgplot.XY{X: x, Y: float64(p.Any)})
		}
		ch.Series = append(ch.Series, one, anyS)
	}
	ch.XMin, ch.XMax = xmin, xmax+0.1*(xmax-xmin)
	name := filepath.Join(dir, fmt.Sprintf("cluster-compare-%s-n%d.svg", sc, n))
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := ch.WriteSVG(f); err != nil {
		t.Fatal(err)
	}
	t.Logf("plot: %s", name)
}
