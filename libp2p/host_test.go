package concordlibp2p

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	lhost "github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2ptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

const perfID = protocol.ID("/perf/1.0.0")

// newHost starts a go-libp2p host listening on 127.0.0.1, TCP only, with
// one security protocol, ping, identify and a /perf/1.0.0 server; its TCP
// transport is Concord's (concord) or go-libp2p's own.
func newHost(t testing.TB, concord bool, sec string, opts ...Option) lhost.Host {
	t.Helper()
	k, _ := newKey(t)
	var tpt libp2p.Option
	if concord {
		args := []any{WithSecurity(sec)}
		for _, o := range opts {
			args = append(args, o)
		}
		tpt = libp2p.Transport(NewTransport, args...)
	} else {
		tpt = libp2p.Transport(libp2ptcp.NewTCPTransport)
	}
	secOpt := libp2p.Security(noise.ID, noise.New)
	if sec == libp2ptls.ID {
		secOpt = libp2p.Security(libp2ptls.ID, libp2ptls.New)
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		tpt, secOpt,
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.Ping(true),
	)
	if err != nil {
		t.Fatalf("libp2p.New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler(perfID, func(s lnetwork.Stream) {
		if err := perfServe(s); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.Close()
	})
	return h
}

// perfServe is the server of /perf/1.0.0: an 8-byte big-endian count of
// bytes to send, then the client's upload until its EOF, then the bytes.
func perfServe(s io.ReadWriter) error {
	var hdr [8]byte
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return err
	}
	_, err := io.CopyN(s, zeros{}, int64(binary.BigEndian.Uint64(hdr[:])))
	return err
}

// perfRun runs one /perf/1.0.0 exchange from h to p: up bytes sent, down
// bytes asked for and counted.
func perfRun(ctx context.Context, h lhost.Host, p lpeer.ID, up, down uint64) error {
	s, err := h.NewStream(ctx, p, perfID)
	if err != nil {
		return err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], down)
	if _, err := s.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := io.CopyN(s, zeros{}, int64(up)); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		return fmt.Errorf("download after %d bytes: %w", n, err)
	}
	if uint64(n) != down {
		return fmt.Errorf("downloaded %d bytes, want %d", n, down)
	}
	return nil
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// checkPair connects from to to and runs identify, ping and a 10 MiB perf
// exchange each way over the connection.
func checkPair(t *testing.T, from, to lhost.Host, sec string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := from.Connect(ctx, lpeer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		t.Fatalf("connect: %v", err)
	}
	conns := from.Network().ConnsToPeer(to.ID())
	if len(conns) != 1 {
		t.Fatalf("%d connections, want 1", len(conns))
	}
	cs := conns[0].ConnState()
	if cs.Transport != "tcp" || string(cs.Security) != sec || cs.StreamMultiplexer != yamux.ID || !cs.UsedEarlyMuxerNegotiation {
		t.Errorf("ConnState %+v, want tcp, %s, %s, early muxer negotiation", cs, sec, yamux.ID)
	}
	waitConnected(ctx, t, to, from.ID())
	for _, pair := range [][2]lhost.Host{{from, to}, {to, from}} {
		a, b := pair[0], pair[1]
		ids, ok := a.(interface{ IDService() identify.IDService })
		if !ok {
			t.Fatalf("host %T has no IDService", a)
		}
		c := a.Network().ConnsToPeer(b.ID())
		if len(c) == 0 {
			t.Fatalf("%s has no connection to %s", a.ID(), b.ID())
		}
		select {
		case <-ids.IDService().IdentifyWait(c[0]):
		case <-ctx.Done():
			t.Fatalf("identify of %s did not finish", b.ID())
		}
		protos, err := a.Peerstore().SupportsProtocols(b.ID(), ping.ID, perfID)
		if err != nil || len(protos) != 2 {
			t.Errorf("identify: %s supports %v of ping and perf (%v)", b.ID(), protos, err)
		}
		res := <-ping.Ping(ctx, a, b.ID())
		if res.Error != nil {
			t.Fatalf("ping: %v", res.Error)
		}
		if err := perfRun(ctx, a, b.ID(), 10<<20, 10<<20); err != nil {
			t.Fatalf("perf 10 MiB each way: %v", err)
		}
	}
}

// TestInteropStockHost: a go-libp2p host on the Concord transport and one
// on go-libp2p's stock TCP transport, noise and tls, each dialing.
func TestInteropStockHost(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		for _, concordDials := range []bool{true, false} {
			name := strings.Split(sec, "/")[1] + map[bool]string{true: "/concord dials", false: "/stock dials"}[concordDials]
			t.Run(name, func(t *testing.T) {
				c, s := newHost(t, true, sec), newHost(t, false, sec)
				if concordDials {
					checkPair(t, c, s, sec)
				} else {
					checkPair(t, s, c, sec)
				}
			})
		}
	}
}

// TestInteropConcordTransportBothHosts: two go-libp2p hosts on the Concord
// transport.
func TestInteropConcordTransportBothHosts(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		t.Run(strings.Split(sec, "/")[1], func(t *testing.T) {
			checkPair(t, newHost(t, true, sec), newHost(t, true, sec), sec)
		})
	}
}

// waitConnected waits until h's swarm holds a connection to p: the
// accepting side adds a connection a moment after the dialer's upgrade
// has ended.
func waitConnected(ctx context.Context, t *testing.T, h lhost.Host, p lpeer.ID) {
	t.Helper()
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for h.Network().Connectedness(p) != lnetwork.Connected {
		select {
		case <-sub.Out():
		case <-ctx.Done():
			t.Fatalf("%s never saw its connection to %s", h.ID(), p)
		}
	}
}
