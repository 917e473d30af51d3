package nspeer

import (
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
)

// TestClusterRestartAll runs a small cluster through a cold start and a
// restart of every host at once: both converge to one connection per pair,
// and the timeline replayed from the events agrees with the tables.
func TestClusterRestartAll(t *testing.T) {
	const n = 4
	net := netlab.NewCluster(t, n, netlab.ClusterOptions{})
	prog := Build(t, BuildConfig{Race: RaceEnabled})
	c := prog.NewCluster(t, net, Options{})
	for round := range 2 {
		last := c.Start()
		good, why, ok := c.WaitConverged(30*time.Second, 20*time.Millisecond)
		if !ok {
			t.Fatalf("round %d: %d of %d pairs after 30 s: %s", round, good, c.Pairs(), why)
		}
		pts := c.Timeline(last)
		at, ok := Settled(pts, c.Pairs())
		if !ok {
			t.Fatalf("round %d: the timeline does not end converged: %+v", round, pts)
		}
		var sum Counters
		for _, k := range c.Counters() {
			sum.Add(k)
		}
		t.Logf("round %d: converged %v after the last start; %+v", round, at.Sub(last), sum)
		if sum.Opened < 2*c.Pairs() {
			t.Errorf("round %d: %d connections opened, want at least %d", round, sum.Opened, 2*c.Pairs())
		}
		if round == 0 {
			c.Kill()
		}
	}
	for i := range n {
		if l := c.Lives(i); len(l) != 2 || l[0].Killed.IsZero() || l[1].Proc.ID != l[0].Proc.ID {
			t.Errorf("host %d: lives %+v, want two of one identity, the first killed", i, l)
		}
	}
	c.Kill()
}
