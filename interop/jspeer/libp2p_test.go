package jspeer

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lhost "github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	lping "github.com/libp2p/go-libp2p/p2p/protocol/ping"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"

	concordlibp2p "github.com/concordp2p/concord/libp2p"
)

// go-libp2p hosts on the Concord transport (module libp2p/) against the
// js-libp2p peer: the interop the issue asks of the transport, beside the
// Concord host's tests above.

const (
	perfID = protocol.ID("/perf/1.0.0")
	// libp2pAgent is the go-libp2p host's identify agent version.
	libp2pAgent = "concord-interop/go-libp2p-on-concord-transport"
)

// libp2pCases: the security the go-libp2p host's Concord transport offers,
// and peer.mjs's --security.
var libp2pCases = []struct{ name, js, sec string }{
	{"noise", "noise", noise.ID},
	{"tls", "tls", libp2ptls.ID},
}

// newLibp2pHost starts a go-libp2p v0.52 host whose only transport is
// Concord's, offering sec, with ping, identify and a /perf/1.0.0 server.
func newLibp2pHost(t *testing.T, sec string, listen bool) lhost.Host {
	t.Helper()
	listenOpt := libp2p.NoListenAddrs
	if listen {
		listenOpt = libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")
	}
	h, err := libp2p.New(
		listenOpt,
		libp2p.Transport(concordlibp2p.NewTransport, concordlibp2p.WithSecurity(sec)),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(true),
		libp2p.UserAgent(libp2pAgent),
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

// perfRun is the client: up bytes sent, down bytes asked for and counted.
func perfRun(ctx context.Context, h lhost.Host, p lpeer.ID, up, down int64) (upload, download time.Duration, err error) {
	s, err := h.NewStream(ctx, p, perfID)
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	start := time.Now()
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(down))
	if _, err := s.Write(hdr[:]); err != nil {
		return 0, 0, err
	}
	if _, err := io.CopyN(s, zeros{}, up); err != nil {
		return 0, 0, fmt.Errorf("upload: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return 0, 0, err
	}
	upload = time.Since(start)
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		return 0, 0, fmt.Errorf("download after %d bytes: %w", n, err)
	}
	if n != down {
		return 0, 0, fmt.Errorf("downloaded %d bytes, want %d", n, down)
	}
	return upload, time.Since(start) - upload, nil
}

// connSeen is what the go-libp2p host's swarm reported of a connection.
type connSeen struct {
	peer lpeer.ID
	sec  string
	mux  protocol.ID
	dir  lnetwork.Direction
}

type zeros struct{}

func (zeros) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// TestLibp2pConcordTransportDialsJS: a go-libp2p host on the Concord
// transport connects to a js-libp2p listener, identifies it, pings it and
// moves 10 MiB each way over perf; the js side reports the connection and
// what its identify learned of the go-libp2p host.
func TestLibp2pConcordTransportDialsJS(t *testing.T) {
	for _, tc := range libp2pCases {
		t.Run(tc.name, func(t *testing.T) {
			js := Listen(t, tc.js)
			h := newLibp2pHost(t, tc.sec, false)
			ai, err := lpeer.AddrInfoFromString(js.Addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			if err := h.Connect(ctx, *ai); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			conns := h.Network().ConnsToPeer(ai.ID)
			if len(conns) != 1 {
				t.Fatalf("%d connections to the js peer, want 1", len(conns))
			}
			if cs := conns[0].ConnState(); string(cs.Security) != tc.sec || cs.StreamMultiplexer != yamux.ID || cs.Transport != "tcp" {
				t.Errorf("go-libp2p sees %+v; want %s, %s over tcp", cs, tc.sec, yamux.ID)
			}
			ev := js.Next(t, h.ID().String(), "connection", 10*time.Second)
			if ev.Encryption != tc.sec || ev.Multiplexer != yamux.ID {
				t.Errorf("js sees %s, %s; want %s, %s", ev.Encryption, ev.Multiplexer, tc.sec, yamux.ID)
			}

			select {
			case <-h.(interface{ IDService() identify.IDService }).IDService().IdentifyWait(conns[0]):
			case <-ctx.Done():
				t.Fatal("identify of the js peer did not finish")
			}
			checkJSInPeerstore(t, h, ai.ID)

			// go-libp2p's Ping pings on one stream until ctx ends
			pctx, pcancel := context.WithCancel(ctx)
			results := lping.Ping(pctx, h, ai.ID)
			for i := range pings {
				if res := <-results; res.Error != nil {
					t.Fatalf("ping %d: %v", i+1, res.Error)
				}
			}
			pcancel()
			up, down, err := perfRun(ctx, h, ai.ID, perfBytes, perfBytes)
			if err != nil {
				t.Fatalf("perf 10 MiB each way: %v", err)
			}
			t.Logf("perf 10 MiB: upload %v, download %v", up, down)

			checkLibp2pSeenByJS(t, js.Next(t, h.ID().String(), "identify", 10*time.Second).Identify, h, false)
		})
	}
}

// TestJSDialsLibp2pConcordTransport: a js-libp2p dialer connects to a
// go-libp2p host listening on the Concord transport, identifies it, pings
// it and moves 10 MiB each way over perf.
func TestJSDialsLibp2pConcordTransport(t *testing.T) {
	for _, tc := range libp2pCases {
		t.Run(tc.name, func(t *testing.T) {
			h := newLibp2pHost(t, tc.sec, true)
			conns := make(chan connSeen, 1)
			h.Network().Notify(&lnetwork.NotifyBundle{ConnectedF: func(_ lnetwork.Network, c lnetwork.Conn) {
				cs := c.ConnState()
				select {
				case conns <- connSeen{c.RemotePeer(), string(cs.Security), cs.StreamMultiplexer, c.Stat().Direction}:
				default:
				}
			}})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			addr := h.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + h.ID().String())).String()
			r := Dial(ctx, t, tc.js, addr, pings, perfBytes)
			if r.Error != "" {
				t.Fatalf("js dialer: %s", r.Error)
			}
			if r.Peer != h.ID().String() || r.Encryption != tc.sec || r.Multiplexer != yamux.ID {
				t.Errorf("js connected to %s with %s, %s; want %s with %s, %s",
					r.Peer, r.Encryption, r.Multiplexer, h.ID(), tc.sec, yamux.ID)
			}
			if len(r.Pings) != pings {
				t.Errorf("js pinged %d times, want %d", len(r.Pings), pings)
			}
			if r.Perf == nil || r.Perf.Downloaded != perfBytes {
				t.Errorf("js perf = %+v, want %d bytes downloaded", r.Perf, perfBytes)
			} else {
				t.Logf("js perf 10 MiB: upload %.1f ms, download %.1f ms", r.Perf.UploadMillis, r.Perf.DownloadMillis)
			}
			checkLibp2pSeenByJS(t, r.Identify, h, true)

			select {
			case c := <-conns:
				if c.sec != tc.sec || c.mux != yamux.ID || c.dir != lnetwork.DirInbound {
					t.Errorf("go-libp2p held the js connection with %s, %s, %v; want %s, %s, inbound", c.sec, c.mux, c.dir, tc.sec, yamux.ID)
				}
				checkJSInPeerstore(t, h, c.peer)
			default:
				t.Error("the go-libp2p host never held the js dialer's connection")
			}
		})
	}
}

// checkJSInPeerstore checks what go-libp2p's identify learned of the js
// peer: its agent and that it serves identify and ping.
func checkJSInPeerstore(t *testing.T, h lhost.Host, p lpeer.ID) {
	t.Helper()
	agent, err := h.Peerstore().Get(p, "AgentVersion")
	if s, _ := agent.(string); err != nil || !strings.HasPrefix(s, jsAgentPrefix) {
		t.Errorf("identify: js agent %v (%v), want %s...", agent, err, jsAgentPrefix)
	}
	protos, err := h.Peerstore().SupportsProtocols(p, identifyID, lping.ID)
	if err != nil || len(protos) != 2 {
		t.Errorf("identify: the js peer supports %v of identify and ping (%v)", protos, err)
	}
}

// checkLibp2pSeenByJS checks what js-libp2p's identify learned of the
// go-libp2p host: its peer ID, a go-libp2p agent, the protocols it serves
// and, when it listens, its listen address.
func checkLibp2pSeenByJS(t *testing.T, id Identify, h lhost.Host, listens bool) {
	t.Helper()
	if id.Event != "identify" || id.Error != "" {
		t.Fatalf("js identify of the go-libp2p host: %+v", id)
	}
	if id.Peer != h.ID().String() {
		t.Errorf("js identified %s, want %s", id.Peer, h.ID())
	}
	if id.AgentVersion != libp2pAgent {
		t.Errorf("js saw agent %q, want %q", id.AgentVersion, libp2pAgent)
	}
	for _, p := range []string{identifyID, string(lping.ID), string(perfID)} {
		if !slices.Contains(id.Protocols, p) {
			t.Errorf("js saw protocols %v, missing %s", id.Protocols, p)
		}
	}
	if listens {
		want := h.Addrs()[0].String()
		if !slices.Contains(id.ListenAddrs, want) {
			t.Errorf("js saw listen addresses %v, want %s among them", id.ListenAddrs, want)
		}
	}
}
