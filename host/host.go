package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Reasons a host closes a connection, seen in ConnClosed events and in the
// errors of streams cut short.
var (
	// ErrDuplicate: the connection lost duplicate resolution.
	ErrDuplicate = errors.New("host: duplicate connection")
	// ErrStaleIncarnation: the peer restarted; the connection belonged to
	// its previous run.
	ErrStaleIncarnation = errors.New("host: connection from the peer's previous incarnation")
	// ErrProbeFailed: the connection did not answer a liveness probe.
	ErrProbeFailed = errors.New("host: liveness probe failed")
	// ErrHostClosed: the host is closed.
	ErrHostClosed = errors.New("host: closed")
	// ErrNoConnection: no live connection to the peer and no address to
	// dial it.
	ErrNoConnection = errors.New("host: no connection to peer")
)

// Host is a Concord peer: it listens, dials, keeps one live connection per
// peer, and serves stream protocols. Its methods are safe for concurrent
// use.
type Host struct {
	cfg  Config
	id   peer.ID
	inc  Incarnation
	tr   *tcp.Transport
	up   *upgrader.Upgrader
	msel *multistream.MultistreamMuxer[string] // inbound stream negotiation

	// dialRaw makes the raw connection of a dial: the TCP transport's
	// Dial; tests replace it with in-memory pipes to run under synctest.
	dialRaw func(ctx context.Context, a ma.Multiaddr) (net.Conn, error)
	// jitter draws backoff jitter; nil means simopen.Backoff's default
	// (math/rand/v2's generator). Tests make it reproducible.
	jitter interface{ Int64N(int64) int64 }

	ctx    context.Context // ends at Close; parent of every goroutine's work
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the host starts

	lmu       sync.Mutex
	listeners []*upgrader.Listener // guarded by lmu

	hmu      sync.RWMutex
	handlers map[string]StreamHandler // guarded by hmu

	pubKey   []byte        // the identity's public key, as identify sends it
	pushCh   chan struct{} // to runPusher: the protocols changed (capacity 1)
	idmu     sync.Mutex
	idAddrs  []ma.Multiaddr // identify's listen addresses; guarded by idmu
	idRecord []byte         // the signed peer record of idAddrs; guarded by idmu

	mu     sync.Mutex
	peers  map[peer.ID]*peerState // guarded by mu
	seq    uint64                 // last connection sequence number given; guarded by mu
	closed bool                   // guarded by mu
}

// New creates a host and starts listening on cfg.ListenAddrs.
func New(cfg Config) (*Host, error) {
	cfg, err := cfg.populate()
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(cfg.Identity)
	if err != nil {
		return nil, fmt.Errorf("%w: identity: %w", ErrInvalidConfig, err)
	}
	inc, err := newIncarnation(cfg.Rand)
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg: cfg, id: id, inc: inc, tr: tcp.New(cfg.TCP),
		msel:     multistream.NewMultistreamMuxer[string](),
		handlers: map[string]StreamHandler{},
		peers:    map[peer.ID]*peerState{},
		pushCh:   make(chan struct{}, 1),
	}
	if h.pubKey, err = peer.MarshalPublicKey(cfg.Identity.Public()); err != nil {
		return nil, fmt.Errorf("%w: identity: %w", ErrInvalidConfig, err)
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.dialRaw = func(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
		c, err := h.tr.Dial(ctx, a)
		if err != nil {
			return nil, err
		}
		return c, nil
	}
	ucfg := cfg.Upgrader
	ucfg.Identity, ucfg.Rand = cfg.Identity, cfg.Rand
	ucfg.Observer = func(e upgrader.Event) { h.emit(UpgradeEvent{Event: e}) }
	if h.up, err = upgrader.New(ucfg); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	h.setHandler(HelloProtocolID, h.serveHello)
	h.setHandler(identify.ID, h.serveIdentify)
	h.setHandler(identify.PushID, h.servePush)
	h.serveProtocols()
	for _, a := range cfg.ListenAddrs {
		if err := h.listen(a); err != nil {
			_ = h.Close()
			return nil, err
		}
	}
	if err := h.sealRecord(); err != nil {
		_ = h.Close()
		return nil, err
	}
	h.wg.Add(1)
	go h.runPusher()
	return h, nil
}

func (h *Host) listen(a ma.Multiaddr) error {
	tl, err := h.tr.Listen(h.ctx, a)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	l := h.up.Listen(tl)
	h.lmu.Lock()
	h.listeners = append(h.listeners, l)
	h.lmu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			c, err := l.Accept(h.ctx)
			if err != nil {
				return
			}
			h.addConn(c)
		}
	}()
	return nil
}

// ID is the host's peer ID.
func (h *Host) ID() peer.ID { return h.id }

// Incarnation identifies this run of the host.
func (h *Host) Incarnation() Incarnation { return h.inc }

// Addrs are the listen addresses, with the ports the kernel chose.
func (h *Host) Addrs() []ma.Multiaddr {
	h.lmu.Lock()
	defer h.lmu.Unlock()
	var out []ma.Multiaddr
	for _, l := range h.listeners {
		if m := l.Multiaddr(); m != nil {
			out = append(out, m)
		}
	}
	return out
}

// AddrInfo is the host's peer ID with its listen addresses.
func (h *Host) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: h.id, Addrs: h.Addrs()} }

// ListenerStats returns the admission counters of each listener.
func (h *Host) ListenerStats() []upgrader.ListenerStats {
	h.lmu.Lock()
	defer h.lmu.Unlock()
	out := make([]upgrader.ListenerStats, len(h.listeners))
	for i, l := range h.listeners {
		out[i] = l.Stats()
	}
	return out
}

// Close closes the listeners and every connection, gracefully (each gets
// at most Config.CloseTimeout for its streams, in parallel, and is left to
// its muxer's bounded linger once its go-away is written), stops every
// dial and keeper, and waits for all the host's goroutines. It is
// idempotent.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	var conns []*Conn
	for _, ps := range h.peers {
		conns = append(conns, ps.conns...)
	}
	h.mu.Unlock()
	h.cancel()
	h.lmu.Lock()
	ls := h.listeners
	h.lmu.Unlock()
	for _, l := range ls {
		_ = l.Close()
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); c.closeWith(ErrHostClosed, h.cfg.CloseTimeout) }()
	}
	wg.Wait()
	h.wg.Wait()
	return nil
}

func (h *Host) emit(e Event) {
	if h.cfg.Observer != nil {
		h.cfg.Observer(e)
	}
}

// upgradeOutbound is the dial path's use of the upgrader.
func (h *Host) upgradeOutbound(ctx context.Context, raw net.Conn, p peer.ID) (*upgrader.Conn, error) {
	return h.up.Upgrade(ctx, raw, network.DirOutbound, p)
}
