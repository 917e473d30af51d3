package upgrader

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	cupgrader "github.com/concordp2p/concord/upgrader"
)

// hostTransferSize is the size of each of the two transfers through the
// host, as against the transport in TestTransport.
const hostTransferSize = transferSize

// newHost starts a go-libp2p host with one security protocol, yamux and TCP
// only, listening on 127.0.0.1 only, with no relay, NAT or metrics, its ping
// service on, and handlers for the echo and sink test protocols.
func newHost(t testing.TB, sp secProto) (lphost.Host, identity) {
	t.Helper()
	ident := newIdentity(t)
	sec := libp2p.Security(lpnoise.ID, lpnoise.New)
	if sp == secTLS {
		sec = libp2p.Security(lptls.ID, lptls.New)
	}
	h, err := libp2p.New(
		libp2p.Identity(ident.lp),
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		sec,
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.Ping(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	for _, proto := range []string{echoProto, sinkProto} {
		h.SetStreamHandler(protocolID(proto), func(s lpnetwork.Stream) {
			if err := handleProto(proto, s); err != nil {
				s.Reset()
				return
			}
			s.Close()
		})
	}
	return h, ident
}

// hostConn is a host and the peer it opens streams to.
type hostConn struct {
	h lphost.Host
	p lppeer.ID
}

// runHostProto opens a stream to hc.p through the host, which negotiates
// proto (lazily, with its first write), and runs fn on it.
func runHostProto(ctx context.Context, hc hostConn, proto string, fn func(stream) error) error {
	s, err := hc.h.NewStream(ctx, hc.p, protocolID(proto))
	if err != nil {
		return fmt.Errorf("host opening %s: %w", proto, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := fn(s); err != nil {
		s.Reset()
		return err
	}
	return nil
}

// TestHost runs Concord's upgrader against a full go-libp2p host, for Noise
// and TLS, in both directions: the connection in the host's swarm, the
// host's own ping service pinging Concord and pinged by it, 100 concurrent
// streams and 64 MiB each way.
func TestHost(t *testing.T) {
	for _, sp := range []secProto{secNoise, secTLS} {
		for _, d := range directions {
			t.Run(sp.String()+"/"+d.name, func(t *testing.T) {
				c := newConcordNode(t, sp)
				h, hid := newHost(t, sp)
				conn, srv := connectHost(t, c, h, d.concordDials)
				ours := concordConn{conn}
				hc := hostConn{h, lppeer.ID(c.ident.id)}

				if got, want := conn.RemotePeer(), hid.id; got != want {
					t.Errorf("Concord RemotePeer: got %s, want the host's %s", got, want)
				}
				conns := h.Network().ConnsToPeer(hc.p)
				if len(conns) != 1 {
					t.Fatalf("host connections to Concord: got %d, want 1", len(conns))
				}
				if got, want := string(conns[0].ConnState().Security), sp.id(); got != want {
					t.Errorf("host's connection Security: got %q, want %q", got, want)
				}
				if got, want := conn.Security(), sp.id(); got != want {
					t.Errorf("Concord Security: got %q, want %q", got, want)
				}
				if !conn.MuxerInlined() || !conns[0].ConnState().UsedEarlyMuxerNegotiation {
					t.Errorf("muxer inlined: Concord %v, host %v; want true, true", conn.MuxerInlined(), conns[0].ConnState().UsedEarlyMuxerNegotiation)
				}

				t.Run("HostPingsConcord", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					results := ping.Ping(ctx, h, hc.p)
					for i := range 3 {
						r := <-results
						if r.Error != nil || r.RTT <= 0 {
							t.Fatalf("go-libp2p ping %d to Concord: got rtt %v, err %v; want rtt > 0, nil", i, r.RTT, r.Error)
						}
					}
				})
				t.Run("ConcordPingsHost", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					if err := runProto(ctx, ours, pingProto, func(s stream) error { return pingOn(s, 5) }); err != nil {
						t.Errorf("Concord pinging the host's ping service: %v", err)
					}
				})
				t.Run("ConcurrentStreams", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					var wg sync.WaitGroup
					errs := make(chan error, streamCount)
					for i := range streamCount {
						wg.Go(func() {
							echo := func(s stream) error { return echoOn(s, streamSize) }
							var err error
							if i%2 == 0 {
								err = runProto(ctx, ours, echoProto, echo)
							} else {
								err = runHostProto(ctx, hc, echoProto, echo)
							}
							if err != nil {
								errs <- fmt.Errorf("stream %d: %w", i, err)
							}
						})
					}
					wg.Wait()
					close(errs)
					for err := range errs {
						t.Error(err)
					}
				})
				t.Run("Transfer64MiB", func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
					defer cancel()
					var wg sync.WaitGroup
					wg.Go(func() {
						if err := runProto(ctx, ours, sinkProto, func(s stream) error { return sinkOn(s, hostTransferSize, 1) }); err != nil {
							t.Errorf("Concord to host: %v", err)
						}
					})
					wg.Go(func() {
						if err := runHostProto(ctx, hc, sinkProto, func(s stream) error { return sinkOn(s, hostTransferSize, 2) }); err != nil {
							t.Errorf("host to Concord: %v", err)
						}
					})
					wg.Wait()
				})
				for _, err := range srv.failures() {
					t.Errorf("Concord's responder: %v", err)
				}
			})
		}
	}
}

// connectHost makes one connection between Concord and the host, dialed
// by Concord when concordDials, else by the host, and starts serving the
// test protocols on Concord's end: the host opens an identify stream on
// every new connection and (when it dials) waits for that exchange to end,
// which takes Concord's answer, na.
func connectHost(t testing.TB, c *concordNode, h lphost.Host, concordDials bool) (*cupgrader.Conn, *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	cid := lppeer.ID(c.ident.id)

	// The host adds a connection to its swarm asynchronously after the
	// upgrade; its notification says when.
	listed := make(chan struct{})
	var once sync.Once
	nb := &lpnetwork.NotifyBundle{ConnectedF: func(_ lpnetwork.Network, nc lpnetwork.Conn) {
		if nc.RemotePeer() == cid {
			once.Do(func() { close(listed) })
		}
	}}
	h.Network().Notify(nb)
	defer h.Network().StopNotify(nb)

	var conn *cupgrader.Conn
	var srv *server
	if concordDials {
		var err error
		conn, err = c.dial(ctx, h.Addrs()[0], peer.ID(h.ID()))
		if err != nil {
			t.Fatalf("Concord dialing the host: %v", err)
		}
		srv = serve(t, concordConn{conn})
	} else {
		done := make(chan error, 1)
		go func() {
			done <- h.Connect(ctx, lppeer.AddrInfo{ID: cid, Addrs: []ma.Multiaddr{c.ln.Multiaddr()}})
		}()
		var err error
		conn, err = c.ln.Accept(ctx)
		if err != nil {
			cancel()
			<-done
			t.Fatalf("Concord accepting the host's connection: %v", err)
		}
		srv = serve(t, concordConn{conn})
		if err := <-done; err != nil {
			t.Fatalf("host connecting to Concord: %v", err)
		}
	}
	select {
	case <-listed:
	case <-ctx.Done():
		t.Fatal("the host never listed its connection to Concord")
	}
	return conn, srv
}

func protocolID(s string) protocol.ID { return protocol.ID(s) }
