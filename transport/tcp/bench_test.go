package tcp

import (
	"context"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// BenchmarkDialAccept measures a loopback dial, accept and close, with and
// without dialing from the listen port. The dialer closes first and keeps
// the TIME-WAIT, but on loopback Linux reuses a TIME-WAIT 4-tuple for a new
// connect (net.ipv4.tcp_tw_reuse=2, the default), so no dial falls back;
// fallbacks/op shows it. TestFallbackAfterTimeWait covers the other case.
func BenchmarkDialAccept(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  Config
	}{{"reuse", Config{}}, {"noreuse", Config{DisableReuse: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			server, client := New(Config{}), New(bc.cfg)
			ctx := context.Background()
			sl, err := server.Listen(ctx, ma.StringCast("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				b.Fatal(err)
			}
			defer sl.Close()
			cl, err := client.Listen(ctx, ma.StringCast("/ip4/127.0.0.1/tcp/0"))
			if err != nil {
				b.Fatal(err)
			}
			defer cl.Close()
			fallbacks := 0
			for b.Loop() {
				accepted := acceptOne(sl)
				c, err := client.Dial(ctx, sl.Multiaddr())
				if err != nil {
					b.Fatal(err)
				}
				if c.Info().Fallback {
					fallbacks++
				}
				c.Close() // the dialer closes first and keeps the TIME-WAIT
				if s := <-accepted; s != nil {
					s.Close()
				}
			}
			b.ReportMetric(float64(fallbacks)/float64(b.N), "fallbacks/op")
		})
	}
}
