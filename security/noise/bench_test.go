package noise

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// BenchmarkHandshake measures complete handshakes (both sides, in one
// process, over net.Pipe) and reports handshakes per second and the
// process CPU time per handshake, for:
//
//   - flynnDH-freshStatic: flynn/noise's DH25519 and a new static key,
//     signed anew, for every handshake (what go-libp2p does);
//   - ecdhDH-freshStatic: the crypto/ecdh DH function, still a new static
//     key per handshake;
//   - ecdhDH-reusedStatic-noCache: the DH function plus one static key and
//     signature reused by every handshake, without the verified-identity
//     cache (what a first contact between two Concord peers costs);
//   - ecdhDH-reusedStatic: the default, as above with the cache, so that
//     every handshake after the first skips both signature checks (what a
//     reconnection between two Concord peers costs).
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name     string
		flynn    bool
		lifetime time.Duration
		cache    int
	}{
		{"flynnDH-freshStatic", true, -1, 0},
		{"ecdhDH-freshStatic", false, -1, 0},
		{"ecdhDH-reusedStatic-noCache", false, 0, -1},
		{"ecdhDH-reusedStatic", false, 0, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ki, kr := sectest.Key(b, peer.Ed25519, 0), sectest.Key(b, peer.Ed25519, 1)
			cfg := Config{StaticKeyLifetime: bc.lifetime, VerifiedCacheSize: bc.cache}
			ti, tr := newTransport(b, ki, cfg), newTransport(b, kr, cfg)
			ti.flynnDH, tr.flynnDH = bc.flynn, bc.flynn
			p := security.Params{Muxers: []string{"/yamux/1.0.0"}}
			ctx := context.Background()
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				c1, c2 := net.Pipe()
				ri, rr := sectest.Pair(ctx, ti, tr, c1, c2, p, p)
				if ri.Err != nil || rr.Err != nil {
					b.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
				}
				sectest.CloseAll(ri, rr)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			// Wall-clock rate, and the rate per CPU-second, which stays
			// meaningful on a machine shared with other work.
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "handshakes/cpu-s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/handshake")
		})
	}
}

// cpuTime is the user plus system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConnBulk measures one-way transfer over a Noise connection on
// loopback TCP, in writes of full frames (what yamux sends in bulk) and of
// small ones, with the process CPU time per GiB.
func BenchmarkConnBulk(b *testing.B) {
	for _, size := range []int{maxPlaintext, 256 << 10, 1024, 64} {
		b.Run(fmt.Sprintf("write=%d", size), func(b *testing.B) {
			w, r, stop := securePair(b, sectest.TCPPair)
			defer stop()
			data := make([]byte, size)
			done := make(chan error, 1)
			total := int64(b.N) * int64(size)
			go func() {
				_, err := io.CopyN(io.Discard, struct{ io.Reader }{r}, total)
				done <- err
			}()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(data); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(cpu.Seconds()/(float64(total)/(1<<30)), "cpu-s/GiB")
		})
	}
}
