package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// opTimeout bounds every single operation of a workload.
const opTimeout = 30 * time.Second

// dialEcho dials, opens a stream and waits for a 1-byte echo: the time to a
// usable connection. It returns the connection, still open.
func dialEcho(ctx context.Context, s stack) (clientConn, error) {
	c, err := s.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if err := echoOnce(ctx, c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func echoOnce(ctx context.Context, c clientConn) error {
	st, err := c.OpenStream(ctx)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	defer st.Close()
	if _, err := st.Write([]byte{modeEcho, 'x'}); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return fmt.Errorf("read echo: %w", err)
	}
	if b[0] != 'x' {
		return errShortEcho
	}
	return nil
}

// dialLatency (1): n sequential dials, each timed until a 1-byte echo on a
// new stream returns; p50 and p99 in microseconds. For Concord, stages
// holds the p50 of each upgrade stage on the dialing side (simopen,
// security, muxer), in microseconds.
func dialLatency(s stack, n int) (p50, p99 float64, stages []float64, err error) {
	if cs, ok := s.(*concordStack); ok {
		defer func() {
			var sim, sec, mux []float64
			for _, d := range cs.Stages() {
				sim = append(sim, float64(d.Simopen.Nanoseconds())/1e3)
				sec = append(sec, float64(d.Security.Nanoseconds())/1e3)
				mux = append(mux, float64(d.Muxer.Nanoseconds())/1e3)
			}
			stages = []float64{percentile(sim, 50), percentile(sec, 50), percentile(mux, 50)}
		}()
	}
	lat := make([]float64, 0, n)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		start := time.Now()
		c, err := dialEcho(ctx, s)
		d := time.Since(start)
		cancel()
		if err != nil {
			return 0, 0, nil, err
		}
		c.Close()
		lat = append(lat, float64(d.Microseconds()))
	}
	// Let the server side finish closing before the next workload.
	if err := waitLive(s, 0, 10*time.Second); err != nil {
		return 0, 0, nil, err
	}
	return percentile(lat, 50), percentile(lat, 99), nil, nil
}

// connRate (2, 3): total connections made by dialers concurrent dialers,
// each until a 1-byte echo returns, then closed. It returns connections per
// second, CPU seconds (user+system, the whole process, so both ends) and
// bytes allocated on the heap per connection. The CPU is counted until the server has closed every
// connection too.
func connRate(s stack, total, dialers int) (perSec, cpuPerConn, allocPerConn float64, err error) {
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	alloc0 := totalAlloc()
	r0, w0 := syscallCounts()
	cpu0 := cpuTime()
	start := time.Now()
	for range dialers {
		wg.Go(func() {
			for next.Add(1) <= int64(total) && firstErr.Load() == nil {
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				c, err := dialEcho(ctx, s)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return 0, 0, 0, *p
	}
	if err := waitLive(s, 0, 10*time.Second); err != nil {
		return 0, 0, 0, err
	}
	cpu := cpuTime() - cpu0
	allocPerConn = float64(totalAlloc()-alloc0) / float64(total)
	r1, w1 := syscallCounts()
	lastSyscalls = [2]float64{float64(r1-r0) / float64(total), float64(w1-w0) / float64(total)}
	return float64(total) / elapsed.Seconds(), cpu.Seconds() / float64(total), allocPerConn, nil
}

// lastSyscalls holds the read and write system calls per connection of the
// last connRate (both ends).
var lastSyscalls [2]float64

// syscallCounts is the process's read and write system calls so far
// (syscr and syscw of /proc/self/io: read, recvfrom, write, sendto...).
func syscallCounts() (r, w uint64) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscr: "); ok {
			r, _ = strconv.ParseUint(v, 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			w, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return r, w
}

// totalAlloc is the bytes allocated on the heap since the program started.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// bulk (4): total bytes one way on one connection, split over streams
// streams writing at once, each ended by CloseWrite and the server's
// one-byte acknowledgement. It returns MB/s (10^6 bytes) and CPU seconds
// per GiB (the whole process, both ends).
func bulk(s stack, total int64, streams int) (mbps, cpuPerGiB float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := dialEcho(ctx, s)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	rand.Read(buf)
	per := total / int64(streams)
	errs := make(chan error, streams)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for range streams {
		wg.Go(func() {
			st, err := c.OpenStream(ctx)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			if _, err := st.Write([]byte{modeSink}); err != nil {
				errs <- err
				return
			}
			for sent := int64(0); sent < per; {
				n, err := st.Write(buf[:min(int64(len(buf)), per-sent)])
				if err != nil {
					errs <- err
					return
				}
				sent += int64(n)
			}
			if err := st.CloseWrite(); err != nil {
				errs <- err
				return
			}
			var ack [1]byte
			if _, err := io.ReadFull(st, ack[:]); err != nil {
				errs <- fmt.Errorf("reading the acknowledgement: %w", err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	sent := per * int64(streams)
	return float64(sent) / elapsed.Seconds() / 1e6, cpu.Seconds() / (float64(sent) / (1 << 30)), nil
}

// echoRTT (5): iters 1-byte echoes on one open stream, after 100 warm-up
// echoes; p50 in microseconds.
func echoRTT(s stack, iters int) (p50 float64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := dialEcho(ctx, s)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	st, err := c.OpenStream(ctx)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if _, err := st.Write([]byte{modeEcho}); err != nil {
		return 0, err
	}
	lat := make([]float64, 0, iters)
	var b [1]byte
	for i := range iters + 100 {
		start := time.Now()
		if _, err := st.Write([]byte{'x'}); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(st, b[:]); err != nil {
			return 0, err
		}
		if i >= 100 {
			lat = append(lat, float64(time.Since(start).Nanoseconds())/1e3)
		}
	}
	return percentile(lat, 50), nil
}

// memSample is the process's memory after forced GCs and a scavenge.
type memSample struct {
	RSS, Heap, Stack uint64
	Goroutines       int
}

func sampleMem() memSample {
	// Two collections first: objects in sync.Pools (go-buffer-pool's
	// buffers among them) survive one, in the pools' victim caches, and
	// would count as live heap in one sample and not in the next.
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{RSS: rss(), Heap: ms.HeapAlloc, Stack: ms.StackInuse, Goroutines: runtime.NumGoroutine()}
}

func writeHeapProfile(path string) {
	if f, err := os.Create(path); err == nil {
		pprof.WriteHeapProfile(f)
		f.Close()
	}
}

// settle waits until the number of goroutines has not changed for three
// samples 30 ms apart (at most 5 s): the goroutines of connections closed
// by an earlier run (both stacks end theirs asynchronously) have ended, so
// they neither hold memory nor use CPU during the next measurement.
func settle() {
	deadline := time.Now().Add(5 * time.Second)
	last, same := runtime.NumGoroutine(), 0
	for same < 3 && time.Now().Before(deadline) {
		time.Sleep(30 * time.Millisecond)
		n := runtime.NumGoroutine()
		if n == last {
			same++
		} else {
			last, same = n, 0
		}
	}
}

// cpuTime is the user plus system CPU time of the whole process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err) // cannot fail on Linux with RUSAGE_SELF
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident set size from /proc/self/statm.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// percentile is the nearest-rank percentile p of xs (which it sorts).
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	i := int(float64(len(xs))*p/100+0.5) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func median(xs []float64) float64 {
	ys := slices.Clone(xs)
	slices.Sort(ys)
	if len(ys) == 0 {
		return 0
	}
	if len(ys)%2 == 1 {
		return ys[len(ys)/2]
	}
	return (ys[len(ys)/2-1] + ys[len(ys)/2]) / 2
}
