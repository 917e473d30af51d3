package security

import (
	"context"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
)

// BenchmarkNoiseHandshake compares complete Noise handshakes (both sides in
// this process, over net.Pipe, Ed25519 identities, one inlined muxer):
// go-libp2p against itself, and Concord against itself with its defaults.
// It reports the process CPU time per handshake.
func BenchmarkNoiseHandshake(b *testing.B) {
	me, them := newIdentity(b, lpcrypto.Ed25519, 0), newIdentity(b, lpcrypto.Ed25519, 1)
	muxers := []string{"/yamux/1.0.0"}
	ctx := context.Background()
	b.Run("go-libp2p", func(b *testing.B) {
		ti, _ := lpnoise.New(lpnoise.ID, me.lp, lpMuxers(muxers))
		tr, _ := lpnoise.New(lpnoise.ID, them.lp, lpMuxers(muxers))
		measure(b, func() {
			c1, c2 := net.Pipe()
			var wg sync.WaitGroup
			wg.Go(func() {
				c, err := tr.SecureInbound(ctx, c2, "")
				if err != nil {
					b.Error(err)
					return
				}
				c.Close()
			})
			c, err := ti.SecureOutbound(ctx, c1, lppeer.ID(them.id))
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
			wg.Wait()
		})
	})
	b.Run("concord", func(b *testing.B) {
		ti, _ := noise.New(me.ours, noise.Config{})
		tr, _ := noise.New(them.ours, noise.Config{})
		measure(b, func() {
			c1, c2 := net.Pipe()
			var wg sync.WaitGroup
			wg.Go(func() {
				c, err := tr.Handshake(ctx, c2, security.Params{Role: network.RoleResponder, Muxers: muxers})
				if err != nil {
					b.Error(err)
					return
				}
				c.Close()
			})
			c, err := ti.Handshake(ctx, c1, security.Params{Role: network.RoleInitiator, ExpectedPeer: them.id, Muxers: muxers})
			if err != nil {
				b.Fatal(err)
			}
			c.Close()
			wg.Wait()
		})
	})
}

func measure(b *testing.B, handshake func()) {
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		handshake()
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/handshake")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
