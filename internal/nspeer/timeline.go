package nspeer

import (
	"slices"
	"time"
)

// Point is one step of a Timeline: from T on, Good pairs of hosts each
// held exactly one live connection (in the table, not draining), the same
// one on both ends.
type Point struct {
	T    time.Time
	Good int
	// Any is the number of pairs in which each end held at least one live
	// connection to the other (Good ones, and those with duplicates not
	// yet resolved or ends that do not agree yet).
	Any int
}

// Timeline replays the events of every process of the cluster, in the
// order of their timestamps (all processes share the machine's clock),
// and returns the number of good pairs over time from from on: the first
// point is at from, and a point follows at each change. A host's table is
// empty from its process's kill. The same connection on both ends is the
// same TCP connection: one end's local address is the other's remote.
//
// The events say when each end added, lost or demoted a connection, so
// the figures do not depend on how often the test polls; Check remains
// the proof (it compares the hello's sequence numbers), Timeline the
// measure.
func (c *Cluster) Timeline(from time.Time) []Point { return c.replay(from, nil) }

// PairSettled replays the events as Timeline does and returns, for each
// pair i < j that ends good, when it last became good (at or after from;
// from itself if it was good all along), keyed [2]int{i, j}. A diagnostic:
// it names the pairs that settled last.
func (c *Cluster) PairSettled(from time.Time) map[[2]int]time.Time {
	out := map[[2]int]time.Time{}
	n := c.N()
	for i := range n {
		for j := i + 1; j < n; j++ {
			out[[2]int{i, j}] = from
		}
	}
	bad := map[[2]int]bool{}
	c.replay(from, func(i, j int, at int64, good bool) {
		k := [2]int{i, j}
		t := time.Unix(0, at)
		if t.Before(from) {
			t = from
		}
		if good {
			out[k], bad[k] = t, false
		} else {
			bad[k] = true
		}
	})
	for k, b := range bad {
		if b {
			delete(out, k)
		}
	}
	return out
}

// replay is Timeline; onPair, if not nil, is told of every change of a
// pair's goodness (i < j).
func (c *Cluster) replay(from time.Time, onPair func(i, j int, at int64, good bool)) []Point {
	type timed struct {
		at    int64
		host  int
		e     Event
		reset bool
	}
	var all []timed
	for i := range c.N() {
		for _, l := range c.Lives(i) {
			for _, e := range l.Proc.Events() {
				all = append(all, timed{at: e.At, host: i, e: e})
			}
			if !l.Killed.IsZero() {
				all = append(all, timed{at: l.Killed.UnixNano(), host: i, reset: true})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b timed) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})

	type conn struct {
		local, remote string
		draining      bool
	}
	n := c.N()
	// tables[i][j]: host i's connections to host j, by i's sequence number.
	tables := make([][]map[uint64]*conn, n)
	for i := range tables {
		tables[i] = make([]map[uint64]*conn, n)
		for j := range tables[i] {
			tables[i][j] = map[uint64]*conn{}
		}
	}
	live := func(i, j int) (*conn, int) {
		var one *conn
		k := 0
		for _, x := range tables[i][j] {
			if !x.draining {
				one, k = x, k+1
			}
		}
		return one, k
	}
	pairGood := func(i, j int) bool {
		a, ka := live(i, j)
		b, kb := live(j, i)
		return ka == 1 && kb == 1 && a.local == b.remote && a.remote == b.local
	}
	good := make([][]bool, n)
	anyc := make([][]bool, n)
	for i := range good {
		good[i] = make([]bool, n)
		anyc[i] = make([]bool, n)
	}
	count, countAny := 0, 0
	flip := func(cur *bool, v bool, k *int) {
		if v != *cur {
			*cur = v
			if v {
				*k++
			} else {
				*k--
			}
		}
	}
	update := func(i, j int, at int64) {
		if i > j {
			i, j = j, i
		}
		g := pairGood(i, j)
		if onPair != nil && g != good[i][j] {
			onPair(i, j, at, g)
		}
		flip(&good[i][j], g, &count)
		_, ka := live(i, j)
		_, kb := live(j, i)
		flip(&anyc[i][j], ka > 0 && kb > 0, &countAny)
	}
	var pts []Point
	record := func(at int64) {
		t := time.Unix(0, at)
		if t.Before(from) {
			return
		}
		if last := pts[len(pts)-1]; last.Good == count && last.Any == countAny {
			return
		}
		if last := &pts[len(pts)-1]; last.T.Equal(t) {
			last.Good, last.Any = count, countAny
			return
		}
		pts = append(pts, Point{T: t, Good: count, Any: countAny})
	}
	started := false
	for _, ev := range all {
		if !started && !time.Unix(0, ev.at).Before(from) {
			pts = append(pts, Point{T: from, Good: count, Any: countAny})
			started = true
		}
		i := ev.host
		if ev.reset {
			for j := range n {
				clear(tables[i][j])
			}
			for j := range n {
				if j != i {
					update(i, j, ev.at)
				}
			}
			record(ev.at)
			continue
		}
		j, ok := c.index[ev.e.Peer]
		if !ok || j == i {
			continue
		}
		switch ev.e.Event {
		case "opened":
			tables[i][j][ev.e.Seq] = &conn{local: ev.e.Local, remote: ev.e.Remote}
		case "closed":
			delete(tables[i][j], ev.e.Seq)
		case "duplicate":
			if x := tables[i][j][ev.e.Seq]; x != nil {
				x.draining = true
			}
		default:
			continue
		}
		update(i, j, ev.at)
		record(ev.at)
	}
	if !started {
		pts = append(pts, Point{T: from, Good: count, Any: countAny})
	}
	return pts
}

// Settled returns when the timeline last reached all good pairs, and false
// if it does not end there.
func Settled(pts []Point, pairs int) (time.Time, bool) {
	k := len(pts)
	for k > 0 && pts[k-1].Good == pairs {
		k--
	}
	if k == len(pts) {
		return time.Time{}, false
	}
	return pts[k].T, true
}

// FirstAt returns when the timeline first reached at least good pairs.
func FirstAt(pts []Point, good int) (time.Time, bool) {
	for _, p := range pts {
		if p.Good >= good {
			return p.T, true
		}
	}
	return time.Time{}, false
}
