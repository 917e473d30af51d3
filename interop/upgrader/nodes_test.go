package upgrader

import (
	"context"
	"testing"
	"time"

	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpsec "github.com/libp2p/go-libp2p/core/sec"
	lptransport "github.com/libp2p/go-libp2p/core/transport"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpupgrader "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
	"github.com/concordp2p/concord/transport/tcp"
	cupgrader "github.com/concordp2p/concord/upgrader"
)

// setupTimeout bounds dials, accepts and upgrades in these tests.
const setupTimeout = 15 * time.Second

var loopback = ma.StringCast("/ip4/127.0.0.1/tcp/0")

// secProto is the security protocol both sides are configured with.
type secProto int

const (
	secNoise secProto = iota
	secTLS
)

func (s secProto) String() string {
	if s == secTLS {
		return "TLS"
	}
	return "Noise"
}

// id is the multistream protocol ID, the same in both implementations.
func (s secProto) id() string {
	if s == secTLS {
		return tls.ID
	}
	return noise.ID
}

// identity is one Ed25519 key in both libraries' types.
type identity struct {
	lp   lpcrypto.PrivKey
	ours peer.PrivKey
	id   peer.ID
}

func (i identity) lpID() lppeer.ID { return lppeer.ID(i.id) }

// newIdentity generates a key with Concord and converts it to go-libp2p's
// type through the libp2p key protobuf both use.
func newIdentity(t testing.TB) identity {
	t.Helper()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := peer.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := lpcrypto.UnmarshalPrivateKey(b)
	if err != nil {
		t.Fatalf("go-libp2p cannot read Concord's private key: %v", err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	lpid, err := lppeer.IDFromPrivateKey(lp)
	if err != nil {
		t.Fatal(err)
	}
	if string(lpid) != string(id) {
		t.Fatalf("peer ID: Concord derives %s, go-libp2p %s", id, lpid)
	}
	return identity{lp: lp, ours: k, id: id}
}

// concordNode is a Concord upgrader with a TCP transport listening on
// 127.0.0.1.
type concordNode struct {
	ident identity
	tr    *tcp.Transport
	up    *cupgrader.Upgrader
	ln    *cupgrader.Listener
	// finished receives the upgrader's UpgradeFinished events, in both
	// directions, as long as it has room.
	finished chan cupgrader.UpgradeFinished
}

func newConcordNode(t testing.TB, sp secProto) *concordNode {
	t.Helper()
	ident := newIdentity(t)
	var st security.Transport
	var err error
	switch sp {
	case secTLS:
		st, err = tls.New(ident.ours, tls.Config{})
	default:
		st, err = noise.New(ident.ours, noise.Config{})
	}
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan cupgrader.UpgradeFinished, 64)
	observe := func(e cupgrader.Event) {
		if f, ok := e.(cupgrader.UpgradeFinished); ok {
			select {
			case finished <- f:
			default: // a test that does not read them does not care
			}
		}
	}
	up, err := cupgrader.New(cupgrader.Config{Identity: ident.ours, Security: cupgrader.SecurityConfig{Transports: []security.Transport{st}}, Observer: observe})
	if err != nil {
		t.Fatal(err)
	}
	tr := tcp.New(tcp.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	tl, err := tr.Listen(ctx, loopback)
	if err != nil {
		t.Fatal(err)
	}
	ln := up.Listen(tl)
	t.Cleanup(func() { ln.Close() })
	return &concordNode{ident: ident, tr: tr, up: up, ln: ln, finished: finished}
}

// dial dials addr over TCP and upgrades the connection, expecting want.
func (n *concordNode) dial(ctx context.Context, addr ma.Multiaddr, want peer.ID) (*cupgrader.Conn, error) {
	raw, err := n.tr.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return n.up.Upgrade(ctx, raw, network.DirOutbound, want)
}

// lpNode is go-libp2p's TCP transport with its upgrader, listening on
// 127.0.0.1.
type lpNode struct {
	ident identity
	tr    *lptcp.TcpTransport
	ln    lptransport.Listener
}

// newLPNode builds go-libp2p's stack with one security protocol and yamux.
// With inline, the security transport offers yamux inside its handshake
// (Noise extension, TLS ALPN) as go-libp2p hosts do; without, the muxer is
// negotiated with multistream-select after the handshake.
func newLPNode(t testing.TB, sp secProto, inline bool) *lpNode {
	t.Helper()
	ident := newIdentity(t)
	muxers := []lpupgrader.StreamMuxer{{ID: lpyamux.ID, Muxer: lpyamux.DefaultTransport}}
	var early []lpupgrader.StreamMuxer
	if inline {
		early = muxers
	}
	var st lpsec.SecureTransport
	var err error
	switch sp {
	case secTLS:
		st, err = lptls.New(lptls.ID, ident.lp, early)
	default:
		st, err = lpnoise.New(lpnoise.ID, ident.lp, early)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := lpupgrader.New([]lpsec.SecureTransport{st}, muxers, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := lptcp.NewTCPTransport(u, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tr.Listen(loopback)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &lpNode{ident: ident, tr: tr, ln: ln}
}

// pair is one upgraded connection seen from both ends.
type pair struct {
	ours *cupgrader.Conn
	lp   lptransport.CapableConn
}

// connect makes one connection between c and l, dialed by Concord when
// concordDials, else by go-libp2p. Both ends are closed at cleanup.
func connect(t testing.TB, c *concordNode, l *lpNode, concordDials bool) pair {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	var p pair
	var dialErr, acceptErr error
	done := make(chan struct{})
	if concordDials {
		go func() {
			defer close(done)
			p.lp, acceptErr = l.ln.Accept()
		}()
		p.ours, dialErr = c.dial(ctx, l.ln.Multiaddr(), l.ident.id)
		if dialErr != nil {
			l.ln.Close() // unblocks Accept, which has no context
		}
	} else {
		go func() {
			defer close(done)
			p.ours, acceptErr = c.ln.Accept(ctx)
		}()
		p.lp, dialErr = l.tr.Dial(ctx, c.ln.Multiaddr(), c.ident.lpID())
		if dialErr != nil {
			cancel()
		}
	}
	<-done
	t.Cleanup(func() {
		if p.ours != nil {
			p.ours.Close()
		}
		if p.lp != nil {
			p.lp.Close()
		}
	})
	if dialErr != nil {
		t.Fatalf("dial: %v", dialErr)
	}
	if acceptErr != nil {
		t.Fatalf("accept: %v", acceptErr)
	}
	return p
}
