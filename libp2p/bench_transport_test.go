package concordlibp2p

import (
	"context"
	"runtime/pprof"
	"sync"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
)

// tptPair is a dialing and a listening transport of one kind.
type tptPair struct {
	dialer transport.Transport
	ln     transport.Listener
	id     lpeer.ID // the listener's
}

func newTptPair(tb testing.TB, concord bool, sec string) tptPair {
	tb.Helper()
	var a, b transport.Transport
	var id lpeer.ID
	if concord {
		a, _ = concordTransport(tb, WithSecurity(sec))
		b, id = concordTransport(tb, WithSecurity(sec))
	} else {
		a, _ = stockTransport(tb, sec)
		b, id = stockTransport(tb, sec)
	}
	ln, err := b.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = ln.Close() })
	return tptPair{dialer: a, ln: ln, id: id}
}

// handshake dials the listener and waits until both ends hold an upgraded
// connection. It returns the process CPU time and the wall time that took;
// the close that follows (both ends, waited for) is in neither.
func (p tptPair) handshake(tb testing.TB) (cpu, wall time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan transport.CapableConn, 1)
	var acceptErr error
	t0, w0 := cpuTime(), time.Now()
	go func() {
		c, err := p.ln.Accept()
		acceptErr = err
		accepted <- c
	}()
	dc, err := p.dialer.Dial(ctx, p.ln.Multiaddr(), p.id)
	if err != nil {
		tb.Fatal(err)
	}
	ac := <-accepted
	cpu, wall = cpuTime()-t0, time.Since(w0)
	if acceptErr != nil {
		tb.Fatal(acceptErr)
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = dc.Close() })
	wg.Go(func() { _ = ac.Close() })
	wg.Wait()
	return cpu, wall
}

// BenchmarkTransportHandshake measures the transports alone, without a
// host: a Dial and the matching Accept, each end's whole upgrade
// (security handshake, muxer), on the Concord transport and on go-libp2p's
// stock TCP transport with its upgrader, alternating in one run. cpu is the
// process CPU time per connection, both ends together; the close is not
// included. Ratios are Concord / stock. As in BenchmarkVsStock, each
// side's goroutines carry the profiler label side=concord or side=stock.
func BenchmarkTransportHandshake(b *testing.B) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		b.Run(sec[1:], func(b *testing.B) {
			var c, s tptPair
			pprof.Do(context.Background(), pprof.Labels("side", "concord"), func(context.Context) { c = newTptPair(b, true, sec) })
			pprof.Do(context.Background(), pprof.Labels("side", "stock"), func(context.Context) { s = newTptPair(b, false, sec) })
			c.handshake(b) // warm up
			s.handshake(b)
			var cpuC, cpuS, wC, wS time.Duration
			b.ResetTimer()
			for range b.N {
				pprof.Do(context.Background(), pprof.Labels("side", "concord"), func(context.Context) {
					cpu, w := c.handshake(b)
					cpuC, wC = cpuC+cpu, wC+w
				})
				pprof.Do(context.Background(), pprof.Labels("side", "stock"), func(context.Context) {
					cpu, w := s.handshake(b)
					cpuS, wS = cpuS+cpu, wS+w
				})
			}
			n := float64(b.N)
			b.ReportMetric(float64(cpuC.Microseconds())/n, "concord-cpu-µs/conn")
			b.ReportMetric(float64(cpuS.Microseconds())/n, "stock-cpu-µs/conn")
			b.ReportMetric(float64(cpuC)/float64(cpuS), "cpu-ratio")
			b.ReportMetric(float64(wC.Microseconds())/n, "concord-µs/conn")
			b.ReportMetric(float64(wS.Microseconds())/n, "stock-µs/conn")
			b.ReportMetric(float64(wC)/float64(wS), "latency-ratio")
		})
	}
}
