package nspeer

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/peer"
)

// ClusterPort is the listen port of every peer of a Cluster: each host has
// a namespace, hence an address, of its own.
const ClusterPort = 4001

var clusterCounter atomic.Uint32

// Cluster is one peer process per host of a netlab cluster, each with a
// fixed key (generated when the cluster is made, so every identity is
// known before any process starts) and the fixed listen port ClusterPort,
// kept connected to every other peer (KeepConnected). A host's process can
// be killed and started again with the same key and port; the cluster
// remembers each process's life so that Timeline can replay the whole run.
//
// Its methods are called from the test's goroutine.
type Cluster struct {
	Net   *netlab.Cluster
	IDs   []peer.ID
	Addrs []ma.Multiaddr

	tb    testing.TB
	prog  *Program
	opts  Options
	keys  []string
	index map[string]int // peer ID → host

	mu    sync.Mutex
	lives [][]*Life // per host, oldest first
}

// Life is one process of a host: when it said ready and, if it was
// killed, when.
type Life struct {
	Proc   *Proc
	Ready  time.Time
	Killed time.Time
}

// NewCluster prepares peers for every host of net, with options o (Port
// and Key are the cluster's own; Name is "h<i>"). No process starts yet.
func (prog *Program) NewCluster(tb testing.TB, net *netlab.Cluster, o Options) *Cluster {
	tb.Helper()
	c := &Cluster{Net: net, tb: tb, prog: prog, opts: o, index: map[string]int{}}
	num := clusterCounter.Add(1)
	for i := range net.Hosts {
		k, err := peer.GenerateKey(peer.Ed25519, nil)
		if err != nil {
			tb.Fatal(err)
		}
		path := filepath.Join(prog.dir, fmt.Sprintf("k%d-%d.key", num, i))
		if err := peer.WriteKeyFile(path, k); err != nil {
			tb.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		c.keys = append(c.keys, path)
		c.IDs = append(c.IDs, id)
		c.index[id.String()] = i
		c.Addrs = append(c.Addrs, ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", net.Hosts[i].Addr, ClusterPort)))
	}
	c.lives = make([][]*Life, len(net.Hosts))
	return c
}

// N is the number of hosts.
func (c *Cluster) N() int { return len(c.IDs) }

// Index returns the host of a peer ID, and false for a stranger.
func (c *Cluster) Index(id string) (int, bool) {
	i, ok := c.index[id]
	return i, ok
}

// Proc is host i's current (last started) process, nil before its first.
func (c *Cluster) Proc(i int) *Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.lives[i]; len(l) > 0 {
		return l[len(l)-1].Proc
	}
	return nil
}

// Lives returns host i's processes so far, oldest first.
func (c *Cluster) Lives(i int) []Life {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Life, len(c.lives[i]))
	for k, l := range c.lives[i] {
		out[k] = *l
	}
	return out
}

// all is hosts, or every host when hosts is empty.
func (c *Cluster) all(hosts []int) []int {
	if len(hosts) > 0 {
		return hosts
	}
	out := make([]int, c.N())
	for i := range out {
		out[i] = i
	}
	return out
}

// goTB is the test's TB for a goroutine other than the test's own: Fatal
// reports the error and ends that goroutine only (runtime.Goexit), and the
// caller fails the test when the goroutine has ended.
type goTB struct{ testing.TB }

func (g goTB) Fatal(args ...any) { g.TB.Helper(); g.TB.Error(args...); runtime.Goexit() }
func (g goTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(format, args...)
	runtime.Goexit()
}
func (g goTB) FailNow() { g.TB.Fail(); runtime.Goexit() }

// Start starts the given hosts' processes (every host's when none is
// given) all at once, each told to keep connected to every other peer as
// soon as it is ready, and returns when all are ready, with the instant the
// last one became ready. A host whose process is still running is killed
// first.
func (c *Cluster) Start(hosts ...int) (last time.Time) {
	c.tb.Helper()
	hosts = c.all(hosts)
	var running []int
	for _, i := range hosts {
		if p := c.Proc(i); p != nil && !p.Exited() {
			running = append(running, i)
		}
	}
	if len(running) > 0 {
		c.Kill(running...)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := c.opts
			o.Name, o.Port, o.Key = fmt.Sprintf("h%d", i), ClusterPort, c.keys[i]
			p := c.prog.Start(goTB{c.tb}, c.Net.Hosts[i], o)
			p.tb = c.tb // from here on the test's goroutine drives it
			ready := time.Now()
			mu.Lock()
			if ready.After(last) {
				last = ready
			}
			mu.Unlock()
			c.mu.Lock()
			c.lives[i] = append(c.lives[i], &Life{Proc: p, Ready: ready})
			c.mu.Unlock()
			if err := c.keep(p, i); err != nil {
				c.tb.Error(err)
			}
		}()
	}
	wg.Wait()
	if c.tb.Failed() {
		c.tb.FailNow()
	}
	return last
}

// keep tells p (host i) to keep connected to every other host.
func (c *Cluster) keep(p *Proc, i int) error {
	var args []any
	for j := range c.IDs {
		if j != i {
			args = append(args, c.IDs[j], c.Addrs[j])
		}
	}
	pend, err := p.Send("keep", args...)
	if err != nil {
		return err
	}
	var r Result
	if err := pend.Await(&r); err != nil {
		return err
	}
	if r.Err != "" {
		return fmt.Errorf("%s: keep: %s", p.Name, r.Err)
	}
	return nil
}

// Kill SIGKILLs the given hosts' processes (every host's when none is
// given) at once, and reaps them.
func (c *Cluster) Kill(hosts ...int) {
	c.tb.Helper()
	var ps []*Proc
	var lives []*Life
	c.mu.Lock()
	for _, i := range c.all(hosts) {
		if l := c.lives[i]; len(l) > 0 && !l[len(l)-1].Proc.Exited() {
			lives = append(lives, l[len(l)-1])
			ps = append(ps, l[len(l)-1].Proc)
		}
	}
	c.mu.Unlock()
	now := time.Now()
	for k, p := range ps {
		lives[k].Killed = now
		p.killed.Store(true)
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			c.tb.Errorf("%s: SIGKILL: %v", p.Name, err)
		}
	}
	for _, p := range ps {
		<-p.exited
		p.Stop()
	}
}

// Signal sends sig (SIGSTOP, SIGCONT) to the given hosts' processes.
func (c *Cluster) Signal(sig syscall.Signal, hosts ...int) {
	c.tb.Helper()
	for _, i := range c.all(hosts) {
		c.Proc(i).Signal(sig)
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Events returns the events the process reported so far.
func (p *Proc) Events() []Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

// each runs verb on the given hosts' current processes at once and decodes
// the replies into outs[k] (made by mk) for hosts[k].
func each[T any](c *Cluster, hosts []int, verb string, args ...any) []T {
	c.tb.Helper()
	outs := make([]T, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	for k, i := range hosts {
		p := c.Proc(i)
		pend, err := p.Send(verb, args...)
		if err != nil {
			errs[k] = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = pend.Await(&outs[k])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.tb.Fatal(err)
		}
	}
	return outs
}

// Tables returns the connection tables of the given hosts (every host's
// when none is given), asked at once.
func (c *Cluster) Tables(hosts ...int) []TableReply {
	c.tb.Helper()
	return each[TableReply](c, c.all(hosts), "table")
}

// Counters returns the counters of the given hosts (every host's when
// none is given).
func (c *Cluster) Counters(hosts ...int) []Counters {
	c.tb.Helper()
	return each[Counters](c, c.all(hosts), "counters")
}

// Usage returns the usage of the given hosts (every host's when none is
// given).
func (c *Cluster) Usage(hosts ...int) []UsageReply {
	c.tb.Helper()
	return each[UsageReply](c, c.all(hosts), "usage")
}

// Check asks every host for its table and counts the pairs that hold
// exactly one connection, the same on both ends (each side's sequence
// number is the one the other's hello announced, from the other's current
// incarnation), neither draining nor closed. why describes the first pair
// that does not, "" when all do.
func (c *Cluster) Check() (good int, why string) {
	c.tb.Helper()
	ts := c.Tables()
	for i := range c.N() {
		for j := i + 1; j < c.N(); j++ {
			a, b := ts[i].Peers[c.IDs[j].String()], ts[j].Peers[c.IDs[i].String()]
			var bad string
			switch {
			case len(a) != 1 || len(b) != 1:
				bad = fmt.Sprintf("h%d holds %d connections to h%d, which holds %d", i, len(a), j, len(b))
			case a[0].Draining || b[0].Draining || a[0].Closed || b[0].Closed:
				bad = fmt.Sprintf("h%d–h%d: the connection is draining or closed", i, j)
			case a[0].Rinc != c.Proc(j).Inc || b[0].Rinc != c.Proc(i).Inc:
				bad = fmt.Sprintf("h%d–h%d: hello missing or from an old incarnation", i, j)
			case a[0].Seq != b[0].Rseq || b[0].Seq != a[0].Rseq:
				bad = fmt.Sprintf("h%d–h%d: different connections (seq %d/%d, peer says %d/%d)", i, j, a[0].Seq, b[0].Seq, b[0].Rseq, a[0].Rseq)
			}
			if bad == "" {
				good++
			} else if why == "" {
				why = bad
			}
		}
	}
	return good, why
}

// Pairs is the number of host pairs, N(N-1)/2.
func (c *Cluster) Pairs() int { return c.N() * (c.N() - 1) / 2 }

// WaitConverged polls Check every interval until every pair is good or
// bound has passed, and returns the last count and reason.
func (c *Cluster) WaitConverged(bound, interval time.Duration) (good int, why string, ok bool) {
	c.tb.Helper()
	deadline := time.Now().Add(bound)
	for {
		good, why = c.Check()
		if good == c.Pairs() {
			return good, "", true
		}
		if time.Now().After(deadline) {
			return good, why, false
		}
		time.Sleep(interval)
	}
}

// CheckMirrored is Check for peers without Concord's hello (go-libp2p):
// a pair is good when each end holds exactly one open connection to the
// other and the two are the same TCP connection (one end's local address
// is the other's remote). any counts the pairs in which each end holds at
// least one; extra counts the connections beyond one per end.
func (c *Cluster) CheckMirrored() (good, any, extra int, why string) {
	c.tb.Helper()
	ts := c.Tables()
	open := func(cs []ConnState) []ConnState {
		var out []ConnState
		for _, x := range cs {
			if !x.Closed {
				out = append(out, x)
			}
		}
		return out
	}
	for i := range c.N() {
		for j := i + 1; j < c.N(); j++ {
			a, b := open(ts[i].Peers[c.IDs[j].String()]), open(ts[j].Peers[c.IDs[i].String()])
			if len(a) > 0 && len(b) > 0 {
				any++
			}
			extra += max(0, len(a)-1) + max(0, len(b)-1)
			var bad string
			switch {
			case len(a) != 1 || len(b) != 1:
				bad = fmt.Sprintf("h%d holds %d connections to h%d, which holds %d", i, len(a), j, len(b))
			case a[0].Local != b[0].Remote || a[0].Remote != b[0].Local:
				bad = fmt.Sprintf("h%d–h%d: different connections", i, j)
			}
			if bad == "" {
				good++
			} else if why == "" {
				why = bad
			}
		}
	}
	return good, any, extra, why
}
