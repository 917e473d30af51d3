package concordlibp2p

import (
	"context"
	"strings"
	"testing"
	"time"

	lhost "github.com/libp2p/go-libp2p/core/host"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

func newConcordHost(t *testing.T, sec string) *host.Host {
	t.Helper()
	h, err := host.New(host.Config{
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")},
		Upgrader:    upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{sec}}},
		Protocols:   host.Protocols{Perf: &perf.Server{}},
	})
	if err != nil {
		t.Fatalf("host.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestInteropConcordHost: a go-libp2p host on the Concord transport and a
// Concord host (host/), noise and tls, each side dialing: ping and a
// 10 MiB /perf/1.0.0 exchange each way, from each side. Identify is not
// exchanged: the Concord host does not speak it yet (issue 13).
func TestInteropConcordHost(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		for _, libp2pDials := range []bool{true, false} {
			name := strings.Split(sec, "/")[1] + map[bool]string{true: "/go-libp2p dials", false: "/concord host dials"}[libp2pDials]
			t.Run(name, func(t *testing.T) {
				lh, ch := newHost(t, true, sec), newConcordHost(t, sec)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				cid := lpeer.ID(ch.ID())
				if libp2pDials {
					if err := lh.Connect(ctx, lpeer.AddrInfo{ID: cid, Addrs: ch.Addrs()}); err != nil {
						t.Fatalf("go-libp2p connects: %v", err)
					}
				} else {
					if _, err := ch.Connect(ctx, peer.AddrInfo{ID: peer.ID(lh.ID()), Addrs: lh.Addrs()}); err != nil {
						t.Fatalf("Concord host connects: %v", err)
					}
					waitConnected(ctx, t, lh, cid)
				}
				checkConcordHost(ctx, t, lh, ch)
			})
		}
	}
}

func checkConcordHost(ctx context.Context, t *testing.T, lh lhost.Host, ch *host.Host) {
	t.Helper()
	cid, lid := lpeer.ID(ch.ID()), peer.ID(lh.ID())
	if res := <-ping.Ping(ctx, lh, cid); res.Error != nil {
		t.Fatalf("go-libp2p pings the Concord host: %v", res.Error)
	}
	if _, err := ch.Ping(ctx, lid); err != nil {
		t.Fatalf("the Concord host pings go-libp2p: %v", err)
	}
	if err := perfRun(ctx, lh, cid, 10<<20, 10<<20); err != nil {
		t.Fatalf("go-libp2p's perf run against the Concord host: %v", err)
	}
	s, err := ch.NewStream(ctx, lid, perf.ID)
	if err != nil {
		t.Fatalf("the Concord host's perf stream: %v", err)
	}
	defer s.Close()
	res, err := perf.Run(ctx, s, 10<<20, 10<<20, nil)
	if err != nil || res.Uploaded != 10<<20 || res.Downloaded != 10<<20 {
		t.Fatalf("the Concord host's perf run: %+v, %v", res, err)
	}
	if n := len(lh.Network().ConnsToPeer(cid)); n != 1 {
		t.Errorf("go-libp2p host has %d connections to the Concord host, want 1", n)
	}
}
