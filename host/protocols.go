package host

import (
	"context"
	"fmt"
	"time"

	"github.com/concordp2p/concord/host/echo"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
)

// Protocols configures the stream protocols the host serves itself.
type Protocols struct {
	// DisablePing stops serving /ipfs/ping/1.0.0, which is served by
	// default (libp2p hosts expect it).
	DisablePing bool
	// Echo, if not nil, serves /echo/1.0.0 with these limits.
	Echo *echo.Server
	// Perf, if not nil, serves /perf/1.0.0 with these limits. Off by
	// default: a perf client chooses how much the server sends (up to
	// Perf.MaxDownload per stream), so serve it only to peers you trust
	// with that bandwidth.
	Perf *perf.Server
}

// serveProtocols registers the built-in handlers Config.Protocols asks for.
// A handler's context ends when the host closes.
func (h *Host) serveProtocols() {
	p := h.cfg.Protocols
	if !p.DisablePing {
		h.SetStreamHandler(ping.ID, func(s *Stream) { _ = ping.Serve(h.ctx, s) })
	}
	if srv := p.Echo; srv != nil {
		h.SetStreamHandler(echo.ID, func(s *Stream) { _ = srv.Serve(h.ctx, s) })
	}
	if srv := p.Perf; srv != nil {
		h.SetStreamHandler(perf.ID, func(s *Stream) { _ = srv.Serve(h.ctx, s) })
	}
}

// Ping measures the round-trip time to p with the libp2p ping protocol
// (32 random bytes echoed) on a new stream, dialing p if needed.
func (h *Host) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	s, err := h.NewStream(ctx, p, ping.ID)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	rtt, err := ping.Ping(ctx, s, nil)
	if err != nil {
		_ = s.Reset()
		return 0, fmt.Errorf("host: ping %s: %w", p.ShortString(), err)
	}
	return rtt, nil
}
