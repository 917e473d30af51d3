package yamux

import (
	"context"
	"io"
	"runtime"
	"sync"
	"testing"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
)

// BenchmarkThroughput moves data one way over an in-memory connection on 1
// and on 8 streams at once, in 64 KiB writes. The figure is the muxer's
// own cost (framing, flow control, copies), without a kernel or crypto.
func BenchmarkThroughput(b *testing.B) {
	for _, streams := range []int{1, 8} {
		b.Run(map[int]string{1: "streams=1", 8: "streams=8"}[streams], func(b *testing.B) {
			c, s := newSessions(b, Config{}, Config{})
			const chunk = 64 << 10
			buf := make([]byte, chunk)
			var writers, readers []muxer.Stream
			for range streams {
				w, r := openPair(b, c, s)
				writers = append(writers, w)
				readers = append(readers, r)
			}
			b.SetBytes(chunk)
			b.ResetTimer()
			var wg sync.WaitGroup
			for i := range streams {
				n := b.N / streams
				if i < b.N%streams {
					n++
				}
				wg.Add(2)
				go func() {
					defer wg.Done()
					for range n {
						if _, err := writers[i].Write(buf); err != nil {
							b.Errorf("Write: %v", err)
							return
						}
					}
					_ = writers[i].CloseWrite()
				}()
				go func() {
					defer wg.Done()
					got, err := io.Copy(io.Discard, readers[i])
					if err != nil || got != int64(n)*chunk {
						b.Errorf("read %d bytes, %v; want %d, nil", got, err, int64(n)*chunk)
					}
				}()
			}
			wg.Wait()
		})
	}
}

// BenchmarkIdleSessionMemory measures the memory one idle session holds
// (heap plus goroutine stacks, after GC), with no stream and with one idle
// stream, over 200 session pairs; it reports bytes per session, one end.
// The in-memory pipe's own few hundred bytes per connection are included;
// a real connection's kernel buffers are not.
func BenchmarkIdleSessionMemory(b *testing.B) {
	for _, withStream := range []bool{false, true} {
		name := "streams=0"
		if withStream {
			name = "streams=1"
		}
		b.Run(name, func(b *testing.B) {
			const pairs = 200
			var perSession float64
			for b.Loop() {
				before := memInUse()
				var sessions []*session
				m, err := New(Config{})
				if err != nil {
					b.Fatal(err)
				}
				for range pairs {
					x, y := newPipe(pipeCapacity)
					c, _ := m.newSession(x, network.RoleInitiator)
					s, _ := m.newSession(y, network.RoleResponder)
					sessions = append(sessions, c, s)
					if withStream {
						ctx := context.Background()
						if _, err := c.OpenStream(ctx); err != nil {
							b.Fatal(err)
						}
						if _, err := s.AcceptStream(ctx); err != nil {
							b.Fatal(err)
						}
					}
				}
				after := memInUse()
				perSession = float64(after-before) / float64(len(sessions))
				for _, s := range sessions {
					s.Close()
				}
			}
			b.ReportMetric(perSession, "B/session")
		})
	}
}

// memInUse is the heap and goroutine stack memory in use after a GC.
func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// BenchmarkThroughputGoYamuxDirect is BenchmarkThroughput/streams=1 on
// go-yamux's own session and stream, with the same settings but without
// this package's layer (window guard, stall timeout, error mapping): the
// ratio of the two is this package's overhead.
func BenchmarkThroughputGoYamuxDirect(b *testing.B) {
	x, y := newPipe(pipeCapacity)
	r, err := Config{}.resolve()
	if err != nil {
		b.Fatal(err)
	}
	c, err := yamux.Client(x, r.yamuxConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s, err := yamux.Server(y, r.yamuxConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	w, err := c.OpenStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	rd, err := s.AcceptStream()
	if err != nil {
		b.Fatal(err)
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	done := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, rd)
		done <- n
	}()
	for range b.N {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = w.CloseWrite()
	if got := <-done; got != int64(b.N)*chunk {
		b.Errorf("read %d bytes, want %d", got, int64(b.N)*chunk)
	}
}
