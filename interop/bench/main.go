// Command bench runs the same workloads against Concord's TCP transport and
// upgrader (Noise, yamux) and against go-libp2p v0.52's (Noise, yamux), in
// one process, over loopback, and prints each figure with the ratio
// Concord/go-libp2p. Both ends of every connection (server and client) run
// in this process, so CPU and memory figures cover both.
//
// Workloads (the numbering of issue 5):
//
//  1. dial: sequential dials, each timed until a 1-byte echo on a new
//     stream returns; p50 and p99.
//  2. cps16, cps64: connections per second with 16 and 64 concurrent
//     dialers, each connection used for one 1-byte echo, then closed.
//  3. the CPU time (user+system, getrusage of the process) of the cps
//     runs divided by the connections: both ends of a connection's whole
//     life.
//  4. bulk1, bulk8: one way on one connection, split over 1 or 8 streams;
//     MB/s and CPU seconds per GiB.
//  5. rtt: 1-byte echo round trips on one open stream; p50.
//  6. idle: growth of RSS, live heap and goroutine stacks per idle
//     connection (no stream open) with many connections.
//
// Every repeat runs each workload on a fresh pair of stacks, Concord first
// on even repeats and go-libp2p first on odd ones. A ratio is computed per
// repeat and the median of those is reported, with the median of each
// stack's figures.
//
// Usage:
//
//	go run ./bench -repeats 5
//	go run ./bench -repeats 1 -only cps16 -impl concord -cpuprofile /tmp/cps.prof
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

type options struct {
	repeats    int
	dials      int
	cpsConns   int
	bulkBytes  int64
	rttIters   int
	idleConns  int
	only       map[string]bool
	impl       string
	jsonOut    string
	heapProf   string
	cpuProfile string
	readBuf    int
	maxMsg     uint
}

// metric is one reported figure.
type metric struct {
	key, label, unit string
	// target is the Concord/go-libp2p ratio to meet, with op "<=" or
	// ">="; op "" means no target.
	op     string
	target float64
}

var metrics = []metric{
	{"dial_p50", "(1) dial to 1-byte echo, p50", "µs", "<=", 0.5},
	{"dial_p99", "(1) dial to 1-byte echo, p99", "µs", "<=", 0.5},
	{"dial_simopen", "(1) Concord dialer's simopen stage, p50", "µs", "", 0},
	{"dial_security", "(1) Concord dialer's security stage, p50", "µs", "", 0},
	{"dial_muxer", "(1) Concord dialer's muxer stage, p50", "µs", "", 0},
	{"cps16", "(2) connections/s, 16 dialers", "conn/s", ">=", 1.8},
	{"cps64", "(2) connections/s, 64 dialers", "conn/s", ">=", 1.8},
	{"cpu_conn16", "(3) CPU per connection, both ends, 16 dialers", "µs", "", 0},
	{"cpu_conn64", "(3) CPU per connection, both ends, 64 dialers", "µs", "", 0},
	{"bulk1_mbps", "(4) one way, 1 stream", "MB/s", ">=", 1.0},
	{"bulk1_cpu", "(4) CPU per GiB, 1 stream", "s/GiB", "<=", 1.0},
	{"bulk8_mbps", "(4) one way, 8 streams", "MB/s", ">=", 1.0},
	{"bulk8_cpu", "(4) CPU per GiB, 8 streams", "s/GiB", "<=", 1.0},
	{"rtt_p50", "(5) 1-byte echo RTT on an open stream, p50", "µs", "", 0},
	{"idle_rss", "(6) RSS per idle connection (both ends)", "KiB", "<=", 0.7},
	{"idle_heap", "(6) live heap per idle connection (both ends)", "KiB", "<=", 0.7},
	{"idle_stack", "(6) goroutine stacks per idle connection (both ends)", "KiB", "", 0},
	{"idle_goroutines", "(6) goroutines per idle connection (both ends)", "", "", 0},
}

// workload runs on one stack and returns figures by metric key.
type workload struct {
	name string
	run  func(s stack, o *options) (map[string]float64, error)
}

var workloads = []workload{
	{"dial", func(s stack, o *options) (map[string]float64, error) {
		p50, p99, stages, err := dialLatency(s, o.dials)
		m := map[string]float64{"dial_p50": p50, "dial_p99": p99}
		if len(stages) == 3 {
			m["dial_simopen"], m["dial_security"], m["dial_muxer"] = stages[0], stages[1], stages[2]
		}
		return m, err
	}},
	{"cps16", func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := connRate(s, o.cpsConns, 16)
		return map[string]float64{"cps16": r, "cpu_conn16": cpu * 1e6}, err
	}},
	{"cps64", func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := connRate(s, o.cpsConns, 64)
		return map[string]float64{"cps64": r, "cpu_conn64": cpu * 1e6}, err
	}},
	{"bulk1", func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := bulk(s, o.bulkBytes, 1)
		return map[string]float64{"bulk1_mbps": r, "bulk1_cpu": cpu}, err
	}},
	{"bulk8", func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := bulk(s, o.bulkBytes, 8)
		return map[string]float64{"bulk8_mbps": r, "bulk8_cpu": cpu}, err
	}},
	{"rtt", func(s stack, o *options) (map[string]float64, error) {
		p50, err := echoRTT(s, o.rttIters)
		return map[string]float64{"rtt_p50": p50}, err
	}},
	{"idle", func(s stack, o *options) (map[string]float64, error) {
		r, h, st, g, err := idleMemory(s, o.idleConns, o.heapProf)
		return map[string]float64{"idle_rss": r / 1024, "idle_heap": h / 1024, "idle_stack": st / 1024, "idle_goroutines": g}, err
	}},
}

var impls = []struct {
	key string
	new func(o *options) (stack, error)
}{
	{"concord", func(o *options) (stack, error) { return newConcord(o.readBuf, uint32(o.maxMsg)) }},
	{"golibp2p", func(*options) (stack, error) { return newLibp2p() }},
}

func main() {
	var o options
	var only string
	flag.IntVar(&o.repeats, "repeats", 5, "repeats of every workload; medians are reported")
	flag.IntVar(&o.dials, "dials", 500, "(1) sequential dials per repeat")
	flag.IntVar(&o.cpsConns, "cps-conns", 2000, "(2) connections per connection-rate run")
	flag.Int64Var(&o.bulkBytes, "bulk-bytes", 1<<30, "(4) bytes sent one way per bulk run")
	flag.IntVar(&o.rttIters, "rtt-iters", 5000, "(5) echoes per RTT run")
	flag.IntVar(&o.idleConns, "idle-conns", 1000, "(6) idle connections")
	flag.StringVar(&only, "only", "", "comma-separated workloads to run (dial,cps16,cps64,bulk1,bulk8,rtt,idle); all if empty")
	flag.StringVar(&o.impl, "impl", "both", "stacks to run: concord, golibp2p or both")
	flag.StringVar(&o.jsonOut, "json", "", "write every figure of every repeat to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&o.heapProf, "heapprofile", "", "write a heap profile at the peak of the idle workload to this file (the last run)")
	flag.IntVar(&o.readBuf, "concord-yamux-readbuf", 0, "analysis only: Concord's yamux ReadBufferSize (0: Concord's default; -1: no read buffer)")
	flag.UintVar(&o.maxMsg, "concord-yamux-maxmsg", 0, "analysis only: Concord's yamux MaxMessageSize (0: Concord's default, 65519)")
	flag.Parse()
	if only != "" {
		o.only = map[string]bool{}
		for _, w := range strings.Split(only, ",") {
			o.only[w] = true
		}
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	if err := run(&o); err != nil {
		pprof.StopCPUProfile()
		log.Fatal(err)
	}
}

// results[metric][impl] holds one figure per repeat.
type results map[string]map[string][]float64

func run(o *options) error {
	start := time.Now()
	fmt.Printf("# bench: %s, %s, GOMAXPROCS %d, %d CPUs, load average at start %s\n",
		start.UTC().Format(time.RFC3339), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAvg())
	fmt.Printf("# repeats %d, dials %d, cps-conns %d, bulk-bytes %d, rtt-iters %d, idle-conns %d, concord-yamux-readbuf %d, concord-yamux-maxmsg %d\n",
		o.repeats, o.dials, o.cpsConns, o.bulkBytes, o.rttIters, o.idleConns, o.readBuf, o.maxMsg)
	res := results{}
	for r := range o.repeats {
		for _, w := range workloads {
			if o.only != nil && !o.only[w.name] {
				continue
			}
			for i := range impls {
				im := impls[(i+r)%len(impls)] // alternate which stack runs first
				if o.impl != "both" && o.impl != im.key {
					continue
				}
				settle()
				s, err := im.new(o)
				if err != nil {
					return fmt.Errorf("%s: starting: %w", im.key, err)
				}
				figs, err := w.run(s, o)
				s.Close()
				if err != nil {
					return fmt.Errorf("repeat %d, %s, %s: %w", r, w.name, im.key, err)
				}
				for k, v := range figs {
					if res[k] == nil {
						res[k] = map[string][]float64{}
					}
					res[k][im.key] = append(res[k][im.key], v)
				}
				fmt.Fprintf(os.Stderr, "repeat %d %-6s %-8s %v\n", r, w.name, im.key, figs)
			}
		}
	}
	printTable(res)
	fmt.Printf("# finished in %v, load average at end %s\n", time.Since(start).Round(time.Second), loadAvg())
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(res, "", " ")
		if err != nil {
			return err
		}
		return os.WriteFile(o.jsonOut, b, 0o644)
	}
	return nil
}

func printTable(res results) {
	fmt.Println("| workload | unit | Concord | go-libp2p | ratio C/g | target | met |")
	fmt.Println("|---|---|---:|---:|---:|---|---|")
	for _, m := range metrics {
		c, g := res[m.key]["concord"], res[m.key]["golibp2p"]
		if len(c) == 0 && len(g) == 0 {
			continue
		}
		ratio, ratioCell := 0.0, "–"
		if len(c) == len(g) && len(c) > 0 {
			var rs []float64
			for i := range c {
				if g[i] != 0 {
					rs = append(rs, c[i]/g[i])
				}
			}
			ratio = median(rs)
			ratioCell = fmt.Sprintf("%.2f× (%.2f–%.2f)", ratio, minOf(rs), maxOf(rs))
		}
		target, met := "–", "–"
		if m.op != "" {
			target = fmt.Sprintf("%s %.1f×", m.op, m.target)
			if ratioCell != "–" {
				ok := ratio <= m.target
				if m.op == ">=" {
					ok = ratio >= m.target
				}
				met = map[bool]string{true: "yes", false: "**no**"}[ok]
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", m.label, m.unit, cell(c), cell(g), ratioCell, target, met)
	}
}

func cell(xs []float64) string {
	if len(xs) == 0 {
		return "–"
	}
	return fmtNum(median(xs))
}

func fmtNum(v float64) string {
	switch a := max(v, -v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func minOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

func maxOf(xs []float64) float64 {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
