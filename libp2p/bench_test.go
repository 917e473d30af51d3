package concordlibp2p

import (
	"context"
	"io"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	lhost "github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
)

const echoID = protocol.ID("/concord-bench/echo/1.0.0")

// benchPair is two go-libp2p hosts on one TCP transport kind, b serving
// an echo protocol.
type benchPair struct{ a, b lhost.Host }

func newBenchPair(tb testing.TB, concord bool) benchPair {
	p := benchPair{newHost(tb, concord, noise.ID), newHost(tb, concord, noise.ID)}
	p.b.SetStreamHandler(echoID, func(s lnetwork.Stream) {
		_, _ = io.Copy(s, s)
		_ = s.Close()
	})
	return p
}

// dialStream connects a to b, opens an echo stream and waits for one
// byte's round trip: the latency a new connection costs an application.
// It returns that latency; the close that follows is not in it.
func (p benchPair) dialStream(tb testing.TB) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.a.Connect(ctx, lpeer.AddrInfo{ID: p.b.ID(), Addrs: p.b.Addrs()}); err != nil {
		tb.Fatal(err)
	}
	s, err := p.a.NewStream(ctx, p.b.ID(), echoID)
	if err != nil {
		tb.Fatal(err)
	}
	var one [1]byte
	if _, err := s.Write(one[:]); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(s, one[:]); err != nil {
		tb.Fatal(err)
	}
	d := time.Since(start)
	_ = s.Close()
	_ = p.a.Network().ClosePeer(p.b.ID())
	return d
}

// bulk sends n bytes to b's echo and reads them back on one stream.
func (p benchPair) bulk(tb testing.TB, s lnetwork.Stream, n int64) time.Duration {
	start := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, s, n)
		errc <- err
	}()
	if _, err := io.CopyN(s, zeros{}, n); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// labelled makes a benchPair under the profiler label side=concord or
// side=stock. Goroutines inherit their creator's labels, so the hosts'
// goroutines carry it: go test -cpuprofile, then
// go tool pprof -tagfocus side=concord, shows one side.
func labelled(tb testing.TB, concord bool) benchPair {
	side := "stock"
	if concord {
		side = "concord"
	}
	var p benchPair
	pprof.Do(context.Background(), pprof.Labels("side", side), func(context.Context) { p = newBenchPair(tb, concord) })
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVsStock measures go-libp2p hosts on the Concord transport and
// on go-libp2p's stock TCP transport in the same run, alternating one
// operation of each per iteration, and reports both and their ratio
// (Concord / stock; below 1 is better for times, above 1 for rates).
//
//	dial+stream: Connect, open a stream, one byte's round trip (noise,
//	  yamux; the close after it is not timed). conns/s is its inverse.
//	  cpu: process CPU time per connection, dial, accept and close on
//	  both hosts included.
//	bulk: 16 MiB echoed on one stream of an open connection (32 MiB
//	  moved), MB/s of the payload.
func BenchmarkVsStock(b *testing.B) {
	b.Run("dial+stream", func(b *testing.B) {
		c, s := labelled(b, true), labelled(b, false)
		c.dialStream(b) // warm up: identify, peerstore
		s.dialStream(b)
		var dc, ds, cpuC, cpuS time.Duration
		b.ResetTimer()
		for range b.N {
			t0 := cpuTime()
			pprof.Do(context.Background(), pprof.Labels("side", "concord"), func(context.Context) { dc += c.dialStream(b) })
			t1 := cpuTime()
			pprof.Do(context.Background(), pprof.Labels("side", "stock"), func(context.Context) { ds += s.dialStream(b) })
			t2 := cpuTime()
			cpuC += t1 - t0
			cpuS += t2 - t1
		}
		n := float64(b.N)
		b.ReportMetric(float64(dc.Microseconds())/n, "concord-µs/conn")
		b.ReportMetric(float64(ds.Microseconds())/n, "stock-µs/conn")
		b.ReportMetric(float64(dc)/float64(ds), "latency-ratio")
		b.ReportMetric(n/dc.Seconds(), "concord-conns/s")
		b.ReportMetric(n/ds.Seconds(), "stock-conns/s")
		b.ReportMetric(float64(cpuC.Microseconds())/n, "concord-cpu-µs/conn")
		b.ReportMetric(float64(cpuS.Microseconds())/n, "stock-cpu-µs/conn")
		b.ReportMetric(float64(cpuC)/float64(cpuS), "cpu-ratio")
	})
	b.Run("bulk", func(b *testing.B) {
		const n = 16 << 20
		var streams [2]lnetwork.Stream
		for i, concord := range []bool{true, false} {
			p := newBenchPair(b, concord)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := p.a.Connect(ctx, lpeer.AddrInfo{ID: p.b.ID(), Addrs: p.b.Addrs()}); err != nil {
				b.Fatal(err)
			}
			s, err := p.a.NewStream(ctx, p.b.ID(), echoID)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Reset() })
			streams[i] = s
			p.bulk(b, s, 1<<20) // warm up the windows
		}
		var dc, ds time.Duration
		b.ResetTimer()
		for range b.N {
			dc += benchPair{}.bulk(b, streams[0], n)
			ds += benchPair{}.bulk(b, streams[1], n)
		}
		mb := float64(n) * float64(b.N) / 1e6
		b.ReportMetric(mb/dc.Seconds(), "concord-MB/s")
		b.ReportMetric(mb/ds.Seconds(), "stock-MB/s")
		b.ReportMetric(ds.Seconds()/dc.Seconds(), "throughput-ratio")
	})
}
