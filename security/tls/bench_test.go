package tls

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// BenchmarkHandshake measures complete handshakes between two Concord
// transports (both sides, in one process, over loopback TCP; the server
// then sends one byte, which carries its session ticket) and reports the
// process CPU time per handshake and the share of handshakes resumed, for:
//
//   - full-noCache: every handshake verifies both certificates in full
//     (a first contact);
//   - full: resumption off, the verified-certificate cache on (a peer
//     reconnecting to a server that issues no tickets);
//   - resumed: the defaults, so every handshake after the first resumes
//     (a Concord peer reconnecting to a Concord peer).
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name     string
		verified int
		sessions int
	}{
		{"full-noCache", -1, -1},
		{"full", 0, -1},
		{"resumed", 0, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ki, kr := sectest.Key(b, peer.Ed25519, 0), sectest.Key(b, peer.Ed25519, 1)
			cfg := Config{VerifiedCacheSize: bc.verified, SessionCacheSize: bc.sessions}
			ti, tr := newTransport(b, ki, cfg), newTransport(b, kr, cfg)
			pi := security.Params{Muxers: []string{"/yamux/1.0.0"}, ExpectedPeer: tr.LocalPeer()}
			pr := security.Params{Muxers: []string{"/yamux/1.0.0"}}
			ctx := context.Background()
			resumed := 0
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				c1, c2 := sectest.TCPPair(b)
				ri, rr := sectest.Pair(ctx, ti, tr, c1, c2, pi, pr)
				if ri.Err != nil || rr.Err != nil {
					b.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
				}
				if _, err := rr.Conn.Write([]byte{1}); err != nil {
					b.Fatal(err)
				}
				var one [1]byte
				if _, err := io.ReadFull(ri.Conn, one[:]); err != nil {
					b.Fatal(err)
				}
				if ri.Conn.(*Conn).ConnectionState().DidResume {
					resumed++
				}
				sectest.CloseAll(ri, rr)
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/handshake")
			b.ReportMetric(float64(resumed)/float64(b.N), "resumed")
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
