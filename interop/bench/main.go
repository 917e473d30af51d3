// Command bench runs the same workloads, side by side in one process over
// loopback, on five stacks, and prints each figure with its ratio to
// go-libp2p's and to the floor:
//
//   - concord: Concord's TCP transport and upgrader (yamux inlined in the
//     handshake).
//   - golibp2p: go-libp2p v0.52's TCP transport and upgrader, as a host
//     configures them (yamux inlined).
//   - golibp2p-on-concord: go-libp2p's transport.Transport interface
//     served by the Concord transport of the libp2p module, which
//     replaces go-libp2p's upgrader path.
//   - floor: the bare crypto over TCP (floors.go): a Noise XX handshake
//     with flynn/noise and Noise transport frames, or crypto/tls 1.3 with
//     pre-built certificates; no muxer.
//   - tcp: raw TCP.
//
// -security picks Noise or TLS for every stack, -mode how peers meet:
// reconnect (one client identity, Concord's verified-peer caches warm),
// first (no verified-peer cache on either end, as if every dial were a
// first contact; go-libp2p has no such cache) or newid (a new client
// identity, key and transport, for every dial, its making included in the
// figures).
//
// Workloads (-only):
//
//   - dial: sequential dials, each timed until a 1-byte echo on a new
//     stream returns; p50 and p99.
//   - cps16, cps64: connections per second with 16 and 64 concurrent
//     dialers, each connection used for one 1-byte echo, then closed; and
//     the CPU time (user+system, getrusage of the process, so both ends)
//     per connection, until the server has closed them all.
//   - bulk1, bulk8: one way on one connection, over 1 or 8 streams; MB/s
//     and CPU seconds per GiB. (A floor connection has one stream; its
//     bulk8 runs 8 connections.)
//   - rtt: 1-byte echo round trips on one open stream; p50.
//   - idle1k, idle10k: growth of RSS, live heap, goroutine stacks and
//     goroutines per idle connection (no stream open), both ends: the
//     server end in this process and the dialing end in a child process
//     (idle.go), which keeps 10,000 connections within RLIMIT_NOFILE.
//   - aead: ChaCha20-Poly1305 and AES-128-GCM seal+open throughput on one
//     core, the floor of bulk CPU.
//
// bulk8 and idle10k run only when named. Every repeat runs each workload
// on fresh stacks, the order of the stacks rotating from one repeat to
// the next. A ratio is computed per repeat and the median of those is
// reported (with the min–max), next to the median of each stack's
// figures. The goal column holds the goals of issue 16 for this
// -security and -mode.
//
// Usage:
//
//	go run ./bench                                  # Noise, reconnecting peers
//	go run ./bench -security tls -mode newid
//	go run ./bench -only idle10k -repeats 1
//	go run ./bench -only cps16 -impl concord,golibp2p -cpuprofile /tmp/prof
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	security      string // noise or tls
	mode          string // reconnect, first or newid
	repeats       int
	dials         int
	cpsConns      int
	bulkBytes     int64
	rttIters      int
	aeadBytes     int64
	only          map[string]bool
	impls         map[string]bool
	jsonOut       string
	heapProf      string
	goroutineProf string
	allocProf     string
	cpuProfile    string
	readBuf       int
	maxMsg        uint
	curImpl       string // the stack of the row being run

	// The idle workload's dialing process (idle.go).
	idleDialer, idleAddr, idlePeer string
	idleN                          int
}

// The stacks, by the keys of -impl.
const (
	implConcord   = "concord"
	implLibp2p    = "golibp2p"
	implOnConcord = "golibp2p-on-concord"
	implFloor     = "floor"
	implTCP       = "tcp"
)

// metric is one reported figure.
type metric struct {
	key, label, unit string
	// goal gives the goal for this figure under o: the ratio
	// Concord/vs (vs is golibp2p or floor) to meet with op "<=" or ">=",
	// or, with vs "", Concord's own figure. op "" means no goal.
	goal func(o *options) (op string, target float64, vs string)
}

func noGoal(*options) (string, float64, string) { return "", 0, "" }

// handshakeGoal is the goal for the per-connection figures: TLS
// against go-libp2p's TLS; Noise first contact and new identity against
// go-libp2p's Noise; reconnecting Noise against the bare crypto floor.
func handshakeGoal(tlsOp string, tlsT, noiseT, floorT float64) func(o *options) (string, float64, string) {
	return func(o *options) (string, float64, string) {
		switch {
		case o.security == "tls":
			if tlsT == 0 {
				return noGoal(o)
			}
			return tlsOp, tlsT, implLibp2p
		case o.mode == "reconnect":
			return tlsOp, floorT, implFloor
		case noiseT == 0:
			return noGoal(o)
		}
		return tlsOp, noiseT, implLibp2p
	}
}

func fixedGoal(op string, t float64, vs string) func(*options) (string, float64, string) {
	return func(*options) (string, float64, string) { return op, t, vs }
}

var metrics = []metric{
	{"dial_p50", "dial to 1-byte echo, p50", "µs", handshakeGoal("<=", 0.8, 0, 1.3)},
	{"dial_p99", "dial to 1-byte echo, p99", "µs", noGoal},
	{"dial_simopen", "Concord dialer's simopen stage, p50", "µs", noGoal},
	{"dial_security", "Concord dialer's security stage, p50", "µs", noGoal},
	{"dial_muxer", "Concord dialer's muxer stage, p50", "µs", noGoal},
	{"cps16", "connections/s, 16 dialers", "conn/s", handshakeGoal(">=", 1.5, 2.0, 1/1.3)},
	{"cps64", "connections/s, 64 dialers", "conn/s", handshakeGoal(">=", 1.5, 2.0, 1/1.3)},
	{"cpu_conn16", "CPU per connection, both ends, 16 dialers", "µs", handshakeGoal("<=", 0.7, 0.5, 1.3)},
	{"cpu_conn64", "CPU per connection, both ends, 64 dialers", "µs", handshakeGoal("<=", 0.7, 0.5, 1.3)},
	{"alloc_conn16", "heap allocated per connection, both ends, 16 dialers", "KiB", noGoal},
	{"reads_conn16", "read system calls per connection, both ends, 16 dialers", "", noGoal},
	{"writes_conn16", "write system calls per connection, both ends, 16 dialers", "", noGoal},
	{"alloc_conn64", "heap allocated per connection, both ends, 64 dialers", "KiB", noGoal},
	{"bulk1_mbps", "bulk one way, 1 stream", "MB/s", fixedGoal(">=", 1.5, implLibp2p)},
	{"bulk1_cpu", "CPU per GiB, 1 stream", "s/GiB", fixedGoal("<=", 0.7, implLibp2p)},
	{"bulk8_mbps", "bulk one way, 8 streams", "MB/s", fixedGoal(">=", 1.5, implLibp2p)},
	{"bulk8_cpu", "CPU per GiB, 8 streams", "s/GiB", fixedGoal("<=", 0.7, implLibp2p)},
	{"rtt_p50", "1-byte echo RTT on an open stream, p50", "µs", fixedGoal("<=", 0.85, implLibp2p)},
	{"idle1k_rss", "RSS per idle connection, 1,000 (both ends)", "KiB", fixedGoal("<=", 0.5, implLibp2p)},
	{"idle1k_heap", "live heap per idle connection, 1,000 (both ends)", "KiB", noGoal},
	{"idle1k_stack", "goroutine stacks per idle connection, 1,000 (both ends)", "KiB", noGoal},
	{"idle1k_goroutines", "goroutines per idle connection, 1,000 (both ends, harness's accept loop excluded)", "", fixedGoal("<=", 4, "")},
	{"idle10k_rss", "RSS per idle connection, 10,000 (both ends)", "KiB", fixedGoal("<=", 0.5, implLibp2p)},
	{"idle10k_heap", "live heap per idle connection, 10,000 (both ends)", "KiB", noGoal},
	{"idle10k_stack", "goroutine stacks per idle connection, 10,000 (both ends)", "KiB", noGoal},
	{"idle10k_goroutines", "goroutines per idle connection, 10,000 (both ends, harness's accept loop excluded)", "", fixedGoal("<=", 4, "")},
	{"idle10k_total", "RSS growth for 10,000 idle connections (both ends)", "MiB", noGoal},
	{"aead_chacha_mbps", "ChaCha20-Poly1305 seal+open, 64 KiB messages, one core", "MB/s", noGoal},
	{"aead_chacha_cpu", "ChaCha20-Poly1305 seal+open CPU per GiB", "s/GiB", noGoal},
	{"aead_aes_mbps", "AES-128-GCM seal+open, 64 KiB messages, one core", "MB/s", noGoal},
	{"aead_aes_cpu", "AES-128-GCM seal+open CPU per GiB", "s/GiB", noGoal},
}

// workload runs on one stack and returns figures by metric key.
type workload struct {
	name string
	// inDefault: run when -only is empty.
	inDefault bool
	// floorOnly: a floor of its own, run once per repeat (on the floor
	// stack's turn) and reported in the floor column.
	floorOnly bool
	run       func(s stack, o *options) (map[string]float64, error)
}

func idleWorkload(name string, n int) workload {
	return workload{name, name == "idle1k", false, func(s stack, o *options) (map[string]float64, error) {
		r, h, st, g, err := idleMemory(s, o, o.curImpl, n)
		m := map[string]float64{name + "_rss": r / 1024, name + "_heap": h / 1024, name + "_stack": st / 1024,
			name + "_goroutines": g - 1} // the harness's per-connection stream-accept loop
		if name == "idle10k" {
			m[name+"_total"] = r * float64(n) / (1 << 20)
		}
		return m, err
	}}
}

var workloads = []workload{
	{"dial", true, false, func(s stack, o *options) (map[string]float64, error) {
		p50, p99, stages, err := dialLatency(s, o.dials)
		m := map[string]float64{"dial_p50": p50, "dial_p99": p99}
		if len(stages) == 3 {
			m["dial_simopen"], m["dial_security"], m["dial_muxer"] = stages[0], stages[1], stages[2]
		}
		return m, err
	}},
	{"cps16", true, false, func(s stack, o *options) (map[string]float64, error) {
		r, cpu, alloc, err := connRate(s, o.cpsConns, 16)
		return map[string]float64{"cps16": r, "cpu_conn16": cpu * 1e6, "alloc_conn16": alloc / 1024,
			"reads_conn16": lastSyscalls[0], "writes_conn16": lastSyscalls[1]}, err
	}},
	{"cps64", true, false, func(s stack, o *options) (map[string]float64, error) {
		r, cpu, alloc, err := connRate(s, o.cpsConns, 64)
		return map[string]float64{"cps64": r, "cpu_conn64": cpu * 1e6, "alloc_conn64": alloc / 1024}, err
	}},
	{"bulk1", true, false, func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := bulk(s, o.bulkBytes, 1)
		return map[string]float64{"bulk1_mbps": r, "bulk1_cpu": cpu}, err
	}},
	{"bulk8", false, false, func(s stack, o *options) (map[string]float64, error) {
		r, cpu, err := bulk(s, o.bulkBytes, 8)
		return map[string]float64{"bulk8_mbps": r, "bulk8_cpu": cpu}, err
	}},
	{"rtt", true, false, func(s stack, o *options) (map[string]float64, error) {
		p50, err := echoRTT(s, o.rttIters)
		return map[string]float64{"rtt_p50": p50}, err
	}},
	idleWorkload("idle1k", 1000),
	idleWorkload("idle10k", 10000),
	{"aead", true, true, func(_ stack, o *options) (map[string]float64, error) {
		cm, cc := chachaFloor(o.aeadBytes)
		am, ac := aesFloor(o.aeadBytes)
		return map[string]float64{"aead_chacha_mbps": cm, "aead_chacha_cpu": cc, "aead_aes_mbps": am, "aead_aes_cpu": ac}, nil
	}},
}

var impls = []struct {
	key, column string
	new         func(o *options) (stack, error)
}{
	{implConcord, "Concord", newConcord},
	{implLibp2p, "go-libp2p", newLibp2p},
	{implOnConcord, "go-libp2p on Concord", newOnConcord},
	{implFloor, "bare crypto", func(o *options) (stack, error) {
		if o.security == "tls" {
			return newFloor(floorTLS)
		}
		return newFloor(floorNoise)
	}},
	{implTCP, "raw TCP", func(*options) (stack, error) { return newFloor(floorTCP) }},
}

func main() {
	var o options
	var only, impl string
	flag.StringVar(&o.security, "security", "noise", "security protocol of every stack: noise or tls")
	flag.StringVar(&o.mode, "mode", "reconnect", "reconnect: one client identity, verified-peer caches warm; "+
		"first: no verified-peer cache on either end (every dial a first contact); newid: a new client identity (key, transport) for every dial")
	flag.IntVar(&o.repeats, "repeats", 3, "repeats of every workload; medians are reported")
	flag.IntVar(&o.dials, "dials", 300, "dial: sequential dials per repeat")
	flag.IntVar(&o.cpsConns, "cps-conns", 1000, "cps16, cps64: connections per connection-rate run")
	flag.Int64Var(&o.bulkBytes, "bulk-bytes", 256<<20, "bulk1, bulk8: bytes sent one way per bulk run")
	flag.IntVar(&o.rttIters, "rtt-iters", 3000, "rtt: echoes per RTT run")
	flag.Int64Var(&o.aeadBytes, "aead-bytes", 256<<20, "aead: bytes sealed and opened per AEAD")
	flag.StringVar(&only, "only", "", "comma-separated workloads (dial,cps16,cps64,bulk1,bulk8,rtt,idle1k,idle10k,aead); empty: all but bulk8 and idle10k")
	flag.StringVar(&impl, "impl", "all", "comma-separated stacks (concord,golibp2p,golibp2p-on-concord,floor,tcp), or all")
	flag.StringVar(&o.jsonOut, "json", "", "write every figure of every repeat to this file")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of every row (workload × stack, first repeat) to DIR/<workload>-<stack>.prof")
	flag.StringVar(&o.heapProf, "heapprofile", "", "write a heap profile at the peak of the idle workload to this file (the last run)")
	flag.StringVar(&o.goroutineProf, "goroutineprofile", "", "write the server end's goroutines (pprof debug=1) at the peak of the idle workload to this file (the last run)")
	flag.StringVar(&o.allocProf, "allocprofile", "", "write the allocation profile of the whole run to this file at the end (run one row)")
	flag.IntVar(&o.readBuf, "concord-yamux-readbuf", 0, "analysis only: Concord's yamux ReadBufferSize (0: Concord's default; -1: no read buffer)")
	flag.UintVar(&o.maxMsg, "concord-yamux-maxmsg", 0, "analysis only: Concord's yamux MaxMessageSize (0: Concord's default)")
	flag.StringVar(&o.idleDialer, "idle-dialer", "", "internal: run as the idle workload's dialing process for this stack")
	flag.StringVar(&o.idleAddr, "idle-addr", "", "internal: the idle dialer's server address")
	flag.StringVar(&o.idlePeer, "idle-peer", "", "internal: the idle dialer's server peer ID, hex")
	flag.IntVar(&o.idleN, "idle-n", 0, "internal: the idle dialer's connections")
	var pingAddr string
	var pingCount int
	var pingInterval time.Duration
	flag.StringVar(&pingAddr, "ping", "", "instead of the workloads: a Concord and a go-libp2p host ping the listener at this multiaddr (with /p2p/), alternately (pingcmp.go)")
	flag.IntVar(&pingCount, "ping-count", 20, "-ping: pings per dialer")
	flag.DurationVar(&pingInterval, "ping-interval", time.Second, "-ping: time between two pings of one dialer")
	flag.Parse()
	if pingAddr != "" {
		if err := pingCompare(pingAddr, pingCount, pingInterval); err != nil {
			log.Fatal(err)
		}
		return
	}
	if o.idleDialer != "" {
		if err := runIdleDialer(&o); err != nil {
			log.Fatal(err)
		}
		return
	}
	if o.security != "noise" && o.security != "tls" {
		log.Fatalf("-security %q: want noise or tls", o.security)
	}
	if o.mode != "reconnect" && o.mode != "first" && o.mode != "newid" {
		log.Fatalf("-mode %q: want reconnect, first or newid", o.mode)
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, w := range strings.Split(only, ",") {
			o.only[w] = true
		}
	}
	o.impls = map[string]bool{}
	for _, im := range impls {
		o.impls[im.key] = impl == "all"
	}
	if impl != "all" {
		for _, k := range strings.Split(impl, ",") {
			if _, ok := o.impls[k]; !ok {
				log.Fatalf("-impl: unknown stack %q", k)
			}
			o.impls[k] = true
		}
	}
	if o.cpuProfile != "" {
		if err := os.MkdirAll(o.cpuProfile, 0o755); err != nil {
			log.Fatal(err)
		}
	}
	if err := raiseFileLimit(); err != nil {
		log.Printf("raising RLIMIT_NOFILE: %v", err)
	}
	if err := run(&o); err != nil {
		log.Fatal(err)
	}
	if o.allocProf != "" {
		f, err := os.Create(o.allocProf)
		if err != nil {
			log.Fatal(err)
		}
		pprof.Lookup("allocs").WriteTo(f, 0)
		f.Close()
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE to what 10,000 connections need with
// both ends in this process (20,000 descriptors and some), up to the
// kernel's fs.nr_open; raising the hard limit needs CAP_SYS_RESOURCE.
func raiseFileLimit() error {
	const want = 1 << 16
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return err
	}
	if l.Cur >= want {
		return nil
	}
	n := uint64(want)
	if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			n = min(n, v)
		}
	}
	nl := syscall.Rlimit{Cur: n, Max: max(n, l.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err != nil {
		nl = syscall.Rlimit{Cur: l.Max, Max: l.Max} // without the capability: the hard limit
		return errors.Join(err, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl))
	}
	return nil
}

// results[metric][impl] holds one figure per repeat.
type results map[string]map[string][]float64

func run(o *options) error {
	start := time.Now()
	fmt.Printf("# bench: %s, %s, GOMAXPROCS %d, %d CPUs, load average at start %s\n",
		start.UTC().Format(time.RFC3339), runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), loadAvg())
	fmt.Printf("# command: bench %s\n", strings.Join(os.Args[1:], " "))
	fmt.Printf("# security %s, mode %s, repeats %d, dials %d, cps-conns %d, bulk-bytes %d, rtt-iters %d, aead-bytes %d, concord-yamux-readbuf %d, concord-yamux-maxmsg %d\n",
		o.security, o.mode, o.repeats, o.dials, o.cpsConns, o.bulkBytes, o.rttIters, o.aeadBytes, o.readBuf, o.maxMsg)
	res := results{}
	for r := range o.repeats {
		for _, w := range workloads {
			if o.only == nil && !w.inDefault || o.only != nil && !o.only[w.name] {
				continue
			}
			for i := range impls {
				im := impls[(i+r)%len(impls)] // alternate which stack runs first
				if !o.impls[im.key] || w.floorOnly && im.key != implFloor {
					continue
				}
				figs, err := runRow(o, r, w, im.key, im.new)
				if err != nil {
					// One retry on a fresh stack: a shared machine can
					// stall a dialer past a timeout now and then.
					fmt.Fprintf(os.Stderr, "repeat %d %s %s failed, retrying once: %v\n", r, w.name, im.key, err)
					figs, err = runRow(o, r, w, im.key, im.new)
				}
				if err != nil {
					return fmt.Errorf("repeat %d, %s, %s: %w", r, w.name, im.key, err)
				}
				for k, v := range figs {
					if res[k] == nil {
						res[k] = map[string][]float64{}
					}
					res[k][im.key] = append(res[k][im.key], v)
				}
				fmt.Fprintf(os.Stderr, "repeat %d %-7s %-19s %v (load %s)\n", r, w.name, im.key, figs, loadAvg())
			}
		}
	}
	printTable(o, res)
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

// runRow runs workload w once on a fresh stack, with a CPU profile of the
// row on the first repeat if asked.
func runRow(o *options, r int, w workload, key string, newStack func(*options) (stack, error)) (map[string]float64, error) {
	settle()
	s, err := newStack(o)
	if err != nil {
		return nil, fmt.Errorf("starting: %w", err)
	}
	defer s.Close()
	o.curImpl = key
	if o.cpuProfile != "" && r == 0 {
		f, err := os.Create(filepath.Join(o.cpuProfile, w.name+"-"+key+".prof"))
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	return w.run(s, o)
}

// ratios are a/b per repeat, when both have a figure for every repeat.
func ratios(a, b []float64) []float64 {
	if len(a) != len(b) || len(a) == 0 {
		return nil
	}
	var rs []float64
	for i := range a {
		if b[i] != 0 {
			rs = append(rs, a[i]/b[i])
		}
	}
	return rs
}

func ratioCell(rs []float64) string {
	if len(rs) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f× (%.2f–%.2f)", median(rs), minOf(rs), maxOf(rs))
}

func printTable(o *options, res results) {
	fmt.Printf("\n%s, %s: ratios are medians of per-repeat ratios (min–max); floor = bare %s over TCP\n\n", o.security, o.mode, o.security)
	fmt.Println("| workload | unit | Concord | go-libp2p | go-libp2p on Concord | bare crypto | raw TCP | C/g | goal | met | C/floor | g/floor | (g on C)/g |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
	for _, m := range metrics {
		row := res[m.key]
		if len(row) == 0 {
			continue
		}
		c, g, f := row[implConcord], row[implLibp2p], row[implFloor]
		cg, cf, gf := ratios(c, g), ratios(c, f), ratios(g, f)
		goal, met := "–", "–"
		if op, t, vs := m.goal(o); op != "" {
			var v float64
			ok := true
			switch vs {
			case implLibp2p:
				goal = fmt.Sprintf("C/g %s %.2f", op, t)
				v, ok = median(cg), len(cg) > 0
			case implFloor:
				goal = fmt.Sprintf("C/floor %s %.2f", op, t)
				v, ok = median(cf), len(cf) > 0
			default:
				goal = fmt.Sprintf("%s %g", op, t)
				v, ok = median(c), len(c) > 0
			}
			if ok {
				yes := v <= t
				if op == ">=" {
					yes = v >= t
				}
				met = map[bool]string{true: "yes", false: "**no**"}[yes]
			}
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", m.label, m.unit,
			cell(c), cell(g), cell(row[implOnConcord]), cell(f), cell(row[implTCP]),
			ratioCell(cg), goal, met, ratioCell(cf), ratioCell(gf), ratioCell(ratios(row[implOnConcord], g)))
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
