package concordlibp2p

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/connmgr"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"
	mafmt "github.com/multiformats/go-multiaddr-fmt"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Transport is a go-libp2p transport.Transport over Concord's pipeline. It
// is safe for concurrent use. One Transport serves one host: its dials go
// out from the ports of its own listeners.
type Transport struct {
	cfg   Config
	key   lcrypto.PrivKey
	local lpeer.ID
	gater connmgr.ConnectionGater // nil: none
	rcmgr lnetwork.ResourceManager
	tcp   *tcp.Transport
	up    *upgrader.Upgrader
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ transport.Listener  = (*listener)(nil)
)

// NewTransport is the transport's constructor, in the shape go-libp2p's
// libp2p.Transport option injects: the host's identity key, its
// connection gater (nil: none) and resource manager (nil: none), then
// options. Use it as libp2p.Transport(concordlibp2p.NewTransport, opts...).
func NewTransport(key lcrypto.PrivKey, gater connmgr.ConnectionGater, rcmgr lnetwork.ResourceManager, opts ...Option) (*Transport, error) {
	var cfg Config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if key == nil {
		return nil, fmt.Errorf("%w: no identity key", ErrInvalidConfig)
	}
	ckey, err := ConcordKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	local, err := lpeer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if rcmgr == nil {
		rcmgr = &lnetwork.NullResourceManager{}
	}
	t := &Transport{cfg: cfg, key: key, local: local, gater: gater, rcmgr: rcmgr,
		tcp: tcp.New(cfg.TCP)}
	ucfg := cfg.Upgrader
	ucfg.Identity = ckey
	ucfg.Gater = (*concordGater)(t)
	t.up, err = upgrader.New(ucfg)
	if err != nil {
		return nil, err
	}
	if string(t.up.LocalPeer()) != string(local) {
		return nil, fmt.Errorf("%w: converted key has peer ID %s, host has %s", ErrInvalidConfig, t.up.LocalPeer(), local)
	}
	return t, nil
}

// ConcordKey converts a go-libp2p private key into Concord's key type
// through their common protobuf form; the peer ID stays the same bytes.
func ConcordKey(k lcrypto.PrivKey) (peer.PrivKey, error) {
	b, err := lcrypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshalling the go-libp2p key: %w", err)
	}
	ck, err := peer.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("reading the key as Concord's: %w", err)
	}
	return ck, nil
}

func libp2pPubKey(k peer.PubKey) (lcrypto.PubKey, error) {
	b, err := peer.MarshalPublicKey(k)
	if err != nil {
		return nil, err
	}
	return lcrypto.UnmarshalPublicKey(b)
}

var dialMatcher = mafmt.And(mafmt.IP, mafmt.Base(ma.P_TCP))

// CanDial reports whether addr is /ip4|/ip6/.../tcp/N.
func (t *Transport) CanDial(addr ma.Multiaddr) bool { return dialMatcher.Matches(addr) }

// Protocols is TCP.
func (t *Transport) Protocols() []int { return []int{ma.P_TCP} }

// Proxy is false.
func (t *Transport) Proxy() bool { return false }

func (t *Transport) String() string { return "Concord TCP" }

// Dial connects to p at raddr: a TCP connect from a listen port when one
// fits, then Concord's upgrade. ctx bounds both.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr, p lpeer.ID) (transport.CapableConn, error) {
	if !t.CanDial(raddr) {
		return nil, fmt.Errorf("concordlibp2p: cannot dial %s", raddr)
	}
	scope, err := t.rcmgr.OpenConnection(lnetwork.DirOutbound, true, raddr)
	if err != nil {
		return nil, fmt.Errorf("resource manager refused the connection to %s: %w", raddr, err)
	}
	if err := scope.SetPeer(p); err != nil {
		scope.Done()
		return nil, fmt.Errorf("resource manager refused the connection to %s: %w", p, err)
	}
	tc, err := t.tcp.Dial(ctx, raddr)
	if err != nil {
		scope.Done()
		return nil, err
	}
	dir, role := lnetwork.DirOutbound, network.RoleUnknown
	if sim, isClient, _ := lnetwork.GetSimultaneousConnect(ctx); sim {
		role = network.RoleInitiator
		if !isClient {
			role, dir = network.RoleResponder, lnetwork.DirInbound
		}
	}
	raw := t.track(tc, scope, dir, true)
	uc, err := t.up.UpgradeAs(ctx, raw, network.DirOutbound, role, peer.ID(p))
	if err != nil {
		return nil, err // raw is closed, the scope done
	}
	return t.capable(uc, raw)
}

// Listen listens on laddr, /ip4|/ip6/.../tcp/N (N = 0: a port of the
// kernel's choice). Later dials go out from its port.
func (t *Transport) Listen(laddr ma.Multiaddr) (transport.Listener, error) {
	if !t.CanDial(laddr) {
		return nil, fmt.Errorf("concordlibp2p: cannot listen on %s", laddr)
	}
	tl, err := t.tcp.Listen(context.Background(), laddr)
	if err != nil {
		return nil, err
	}
	ul := t.up.ListenRaw(&rawListener{t: t, tl: tl})
	return newListener(t, ul, tl.Multiaddr()), nil
}

// track wraps a raw connection with its scope. The upgraded connection
// gives it back (upgrader.Conn.Raw), so the listener finds the scope of
// the connection it accepted.
func (t *Transport) track(tc *tcp.Conn, scope lnetwork.ConnManagementScope, dir lnetwork.Direction, peerSet bool) *rawConn {
	return &rawConn{Conn: tc, t: t, scope: scope, dir: dir, peerSet: peerSet}
}

// capable turns an upgraded connection into go-libp2p's CapableConn.
func (t *Transport) capable(uc *upgrader.Conn, raw *rawConn) (transport.CapableConn, error) {
	pub, err := libp2pPubKey(uc.RemotePublicKey())
	if err != nil {
		_ = uc.Close()
		return nil, fmt.Errorf("concordlibp2p: remote key: %w", err)
	}
	return newConn(t, uc, raw, pub), nil
}

// rawConn is a TCP connection with its go-libp2p resource scope. Closing
// it, whoever does (a failed upgrade, the session's close), ends the scope.
type rawConn struct {
	*tcp.Conn
	t       *Transport
	scope   lnetwork.ConnManagementScope
	dir     lnetwork.Direction // as go-libp2p reports it
	peerSet bool               // SetPeer done (dials set it before connecting)

	closeOnce sync.Once
	closeErr  error
}

func (c *rawConn) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		c.scope.Done()
	})
	return c.closeErr
}

// concordGater is the upgrader's Gater: it runs go-libp2p's resource
// manager and gater steps that need the authenticated peer, on the
// connection's own scope, between the handshake and the muxer.
type concordGater Transport

var _ upgrader.RawConnGater = (*concordGater)(nil)

// InterceptAccept: the raw listener has already run go-libp2p's gater and
// resource manager on the connection.
func (g *concordGater) InterceptAccept(net.Addr) error { return nil }

// InterceptSecured is not called: InterceptSecuredRaw replaces it.
func (g *concordGater) InterceptSecured(network.Direction, peer.ID, net.Addr) error { return nil }

// InterceptSecuredRaw sets the peer on the connection's scope (inbound;
// a dial set it before connecting) and asks go-libp2p's gater
// InterceptSecured.
func (g *concordGater) InterceptSecuredRaw(raw net.Conn, _ network.Direction, remote peer.ID) error {
	rc, ok := raw.(*rawConn)
	if !ok {
		return fmt.Errorf("concordlibp2p: upgrading a connection of type %T", raw)
	}
	p := lpeer.ID(remote)
	if !rc.peerSet {
		if err := rc.scope.SetPeer(p); err != nil {
			return fmt.Errorf("resource manager refused peer %s: %w", p, err)
		}
		rc.peerSet = true
	}
	if t := (*Transport)(g); t.gater != nil && !t.gater.InterceptSecured(rc.dir, p, rc.multiaddrs()) {
		return fmt.Errorf("gater refused secured connection with %s at %s", p, rc.RemoteMultiaddr())
	}
	return nil
}

// InterceptUpgraded: the swarm calls go-libp2p's InterceptUpgraded itself.
func (g *concordGater) InterceptUpgraded(*upgrader.Conn) error { return nil }

func (c *rawConn) multiaddrs() lnetwork.ConnMultiaddrs {
	return maddrs{c.LocalMultiaddr(), c.RemoteMultiaddr()}
}

type maddrs struct{ local, remote ma.Multiaddr }

func (m maddrs) LocalMultiaddr() ma.Multiaddr  { return m.local }
func (m maddrs) RemoteMultiaddr() ma.Multiaddr { return m.remote }

// rawListener hands the upgrader's Listener TCP connections that passed
// go-libp2p's gater (InterceptAccept) and resource manager
// (OpenConnection), each with its scope. A connection either refuses is
// closed and skipped.
type rawListener struct {
	t  *Transport
	tl *tcp.Listener
}

func (l *rawListener) Accept() (net.Conn, error) {
	for {
		tc, err := l.tl.Accept()
		if err != nil {
			return nil, err
		}
		m := maddrs{tc.LocalMultiaddr(), tc.RemoteMultiaddr()}
		if g := l.t.gater; g != nil && !g.InterceptAccept(m) {
			_ = tc.Close()
			continue
		}
		scope, err := l.t.rcmgr.OpenConnection(lnetwork.DirInbound, true, m.remote)
		if err != nil {
			_ = tc.Close()
			continue
		}
		return l.t.track(tc, scope, lnetwork.DirInbound, false), nil
	}
}

func (l *rawListener) Close() error   { return l.tl.Close() }
func (l *rawListener) Addr() net.Addr { return l.tl.Addr() }
