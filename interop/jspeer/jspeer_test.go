package jspeer

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

const (
	perfBytes  = 10 << 20
	pings      = 3
	identifyID = "/ipfs/id/1.0.0"
	// jsAgentPrefix is how js-libp2p's identify names its agent.
	jsAgentPrefix = "js-libp2p/"
)

// securityCase is one pairing of offers: what each side offers, most
// preferred first, and the protocol they must agree on. The mixed cases
// check that a preference neither side shares is skipped.
type securityCase struct {
	name    string
	js      string   // peer.mjs --security
	concord []string // host.Config Upgrader.Security.Protocols
	want    string
}

var securityCases = []securityCase{
	{"noise", "noise", []string{host.SecurityNoise}, host.SecurityNoise},
	{"tls", "tls", []string{host.SecurityTLS}, host.SecurityTLS},
	{"js-tls+noise/concord-noise", "tls,noise", []string{host.SecurityNoise}, host.SecurityNoise},
	{"js-noise/concord-tls+noise", "noise", []string{host.SecurityTLS, host.SecurityNoise}, host.SecurityNoise},
	{"js-noise+tls/concord-tls", "noise,tls", []string{host.SecurityTLS}, host.SecurityTLS},
}

// newHost starts a Concord host serving ping and perf with the given
// security offer; observer, if not nil, receives its events.
func newHost(t *testing.T, security []string, listen bool, observer func(host.Event)) *host.Host {
	t.Helper()
	cfg := host.Config{Protocols: host.Protocols{Perf: &perf.Server{}}, Observer: observer}
	cfg.Upgrader.Security.Protocols = security
	if listen {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	}
	h, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// TestConcordDialsJS: a Concord host connects to a js-libp2p listener,
// pings it, moves 10 MiB each way over perf and asks its identify; the js
// side reports the connection it accepted and what its identify learned.
func TestConcordDialsJS(t *testing.T) {
	for _, tc := range securityCases {
		t.Run(tc.name, func(t *testing.T) {
			js := Listen(t, tc.js)
			h := newHost(t, tc.concord, false, nil)
			ai, err := peer.AddrInfoFromString(js.Addr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			c, err := h.Connect(ctx, *ai)
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			if c.Security() != tc.want || c.Muxer() != "/yamux/1.0.0" {
				t.Errorf("Concord sees %s, %s; want %s, /yamux/1.0.0", c.Security(), c.Muxer(), tc.want)
			}
			ev := js.Next(t, h.ID().String(), "connection", 10*time.Second)
			if ev.Encryption != tc.want || ev.Multiplexer != "/yamux/1.0.0" {
				t.Errorf("js sees %s, %s; want %s, /yamux/1.0.0", ev.Encryption, ev.Multiplexer, tc.want)
			}
			for i := range pings {
				if _, err := h.Ping(ctx, ai.ID); err != nil {
					t.Fatalf("ping %d: %v", i+1, err)
				}
			}
			s, err := h.NewStream(ctx, ai.ID, perf.ID)
			if err != nil {
				t.Fatalf("perf stream: %v", err)
			}
			res, err := perf.Run(ctx, s, perfBytes, perfBytes, nil)
			_ = s.Close()
			if err != nil {
				t.Fatalf("perf: %v", err)
			}
			if res.Uploaded != perfBytes || res.Downloaded != perfBytes {
				t.Errorf("perf moved %d up, %d down; want %d each", res.Uploaded, res.Downloaded, perfBytes)
			}
			t.Logf("perf 10 MiB: upload %v, download %v", res.Upload, res.Download)

			checkJSIdentify(t, ctx, h, c, ai.ID)
			checkConcordSeenByJS(t, js.Next(t, h.ID().String(), "identify", 10*time.Second).Identify, h)
		})
	}
}

// TestJSDialsConcord: a js-libp2p dialer connects to a Concord listener,
// pings it, moves 10 MiB each way over perf and runs identify.
func TestJSDialsConcord(t *testing.T) {
	for _, tc := range securityCases {
		t.Run(tc.name, func(t *testing.T) {
			opened := make(chan host.ConnOpened, 1)
			h := newHost(t, tc.concord, true, func(e host.Event) {
				if o, ok := e.(host.ConnOpened); ok {
					select {
					case opened <- o:
					default:
					}
				}
			})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			addr := h.Addrs()[0].String() + "/p2p/" + h.ID().String()
			r := Dial(ctx, t, tc.js, addr, pings, perfBytes)
			if r.Error != "" {
				t.Fatalf("js dialer: %s", r.Error)
			}
			if r.Peer != h.ID().String() || r.Encryption != tc.want || r.Multiplexer != "/yamux/1.0.0" {
				t.Errorf("js connected to %s with %s, %s; want %s with %s, /yamux/1.0.0",
					r.Peer, r.Encryption, r.Multiplexer, h.ID(), tc.want)
			}
			if len(r.Pings) != pings {
				t.Errorf("js pinged %d times, want %d", len(r.Pings), pings)
			}
			if r.Perf == nil || r.Perf.Downloaded != perfBytes {
				t.Errorf("js perf = %+v, want %d bytes downloaded", r.Perf, perfBytes)
			} else {
				t.Logf("js perf 10 MiB: upload %.1f ms, download %.1f ms", r.Perf.UploadMillis, r.Perf.DownloadMillis)
			}
			select {
			case o := <-opened:
				if o.Security != tc.want || o.Muxer != "/yamux/1.0.0" {
					t.Errorf("Concord sees %s, %s; want %s, /yamux/1.0.0", o.Security, o.Muxer, tc.want)
				}
			default:
				t.Error("the Concord listener never held the js dialer's connection")
			}
			checkConcordSeenByJS(t, r.Identify, h)
		})
	}
}

// TestNoCommonSecurity: js offering only TLS to a Concord host offering
// only Noise fails on both ends, and Concord says why.
func TestNoCommonSecurity(t *testing.T) {
	js := Listen(t, "tls")
	h := newHost(t, []string{host.SecurityNoise}, false, nil)
	ai, err := peer.AddrInfoFromString(js.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = h.Connect(ctx, *ai)
	if !errors.Is(err, upgrader.ErrNoCommonProtocol) {
		t.Fatalf("Connect = %v, want ErrNoCommonProtocol", err)
	}
}

// checkConcordSeenByJS checks what js-libp2p's identify learned of the
// Concord host, once Concord serves identify.
func checkConcordSeenByJS(t *testing.T, id Identify, h *host.Host) {
	t.Helper()
	if id.Event != "identify" {
		t.Fatalf("js identify of Concord failed: %s", id.Error)
	}
	if id.AgentVersion == "" || id.ProtocolVersion == "" {
		t.Errorf("js sees agent %q, protocol version %q; want both set", id.AgentVersion, id.ProtocolVersion)
	}
	if !slices.Contains(id.Protocols, ping.ID) || !slices.Contains(id.Protocols, perf.ID) {
		t.Errorf("js sees protocols %v, want %s and %s among them", id.Protocols, ping.ID, perf.ID)
	}
	// A host that only dials has no listen address to announce.
	if listening := len(h.Addrs()) > 0; listening != (len(id.ListenAddrs) > 0) {
		t.Errorf("js sees listen addresses %v of Concord, which listens on %v", id.ListenAddrs, h.Addrs())
	}
}

// checkJSIdentify reads js-libp2p's identify answer over a Concord stream
// and checks it against the connection: its key is the peer's, it lists
// ping and perf, its listen address and js's agent, and Concord's address
// as observed.
func checkJSIdentify(t *testing.T, ctx context.Context, h *host.Host, c *host.Conn, p peer.ID) {
	t.Helper()
	s, err := h.NewStream(ctx, p, identifyID)
	if err != nil {
		t.Fatalf("identify stream: %v", err)
	}
	defer s.Close()
	msg, err := io.ReadAll(io.LimitReader(s, 64<<10))
	if err != nil {
		t.Fatalf("reading identify: %v", err)
	}
	body, n := protowire.ConsumeBytes(msg) // length-delimited, varint prefix
	if n < 0 || n != len(msg) {
		t.Fatalf("identify answer of %d bytes is not one length-prefixed message", len(msg))
	}
	var (
		key              []byte
		agent, protoVer  string
		protocols, addrs []string
		observed         ma.Multiaddr
	)
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			t.Fatalf("identify: bad tag: %v", protowire.ParseError(n))
		}
		body = body[n:]
		if typ != protowire.BytesType {
			n = protowire.ConsumeFieldValue(num, typ, body)
			if n < 0 {
				t.Fatalf("identify field %d: %v", num, protowire.ParseError(n))
			}
			body = body[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(body)
		if n < 0 {
			t.Fatalf("identify field %d: %v", num, protowire.ParseError(n))
		}
		body = body[n:]
		switch num { // libp2p identify spec field numbers
		case 1:
			key = v
		case 2:
			a, err := ma.NewMultiaddrBytes(v)
			if err != nil {
				t.Errorf("listen address: %v", err)
				continue
			}
			addrs = append(addrs, a.String())
		case 3:
			protocols = append(protocols, string(v))
		case 4:
			if observed, err = ma.NewMultiaddrBytes(v); err != nil {
				t.Errorf("observed address: %v", err)
			}
		case 5:
			protoVer = string(v)
		case 6:
			agent = string(v)
		}
	}
	pub, err := peer.UnmarshalPublicKey(key)
	if err != nil {
		t.Fatalf("identify public key: %v", err)
	}
	if id, err := peer.IDFromPublicKey(pub); err != nil || id != p {
		t.Errorf("identify key is peer %s (%v), want %s", id, err, p)
	}
	if !strings.HasPrefix(agent, jsAgentPrefix) || protoVer == "" {
		t.Errorf("agent %q, protocol version %q; want %s… and a protocol version", agent, protoVer, jsAgentPrefix)
	}
	for _, want := range []string{ping.ID, perf.ID, identifyID} {
		if !slices.Contains(protocols, want) {
			t.Errorf("js lists protocols %v, want %s among them", protocols, want)
		}
	}
	if !slices.Contains(addrs, strings.Split(c.RemoteMultiaddr().String(), "/p2p/")[0]) {
		t.Errorf("js lists listen addresses %v, want %v among them", addrs, c.RemoteMultiaddr())
	}
	if observed != nil {
		observed, _ = ma.SplitFunc(observed, func(c ma.Component) bool { return c.Code() == ma.P_P2P })
	}
	if observed == nil || !observed.Equal(c.LocalMultiaddr()) {
		t.Errorf("js observed Concord at %v, want %v", observed, c.LocalMultiaddr())
	}
}
