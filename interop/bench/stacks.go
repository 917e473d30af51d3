package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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

	concordlibp2p "github.com/concordp2p/concord/libp2p"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// The first byte of every benchmark stream says what the server does with
// it; no protocol negotiation runs on streams, in either stack.
const (
	modeEcho = 'e' // echo every byte until EOF
	modeSink = 's' // discard until EOF, then answer one byte
)

// stream is what both stacks' streams offer.
type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// clientConn is one upgraded connection on the dialing side.
type clientConn interface {
	OpenStream(ctx context.Context) (stream, error)
	Close() error
}

// stack is one implementation under test: a server listening on
// 127.0.0.1, which serves every stream it accepts by its mode byte, and a
// client that dials it. Both ends live in this process.
type stack interface {
	Name() string
	Dial(ctx context.Context) (clientConn, error)
	// Live is the number of server-side connections not yet closed.
	Live() int64
	// Close closes the server's listener and connections and waits for
	// its goroutines.
	Close() error
	// Target is the server's address and peer ID (raw bytes, as a
	// string); Retarget makes Dial go to another server of the same kind
	// (in the idle workload's dialing process).
	Target() (addr, id string)
	Retarget(addr, id string) error
}

var loopback = ma.StringCast("/ip4/127.0.0.1/tcp/0")

// keyPair is one Ed25519 identity in both libraries' types.
type keyPair struct {
	ours peer.PrivKey
	lp   lpcrypto.PrivKey
	id   peer.ID
}

func newKeyPair() (keyPair, error) {
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		return keyPair{}, err
	}
	b, err := peer.MarshalPrivateKey(k)
	if err != nil {
		return keyPair{}, err
	}
	lp, err := lpcrypto.UnmarshalPrivateKey(b)
	if err != nil {
		return keyPair{}, err
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		return keyPair{}, err
	}
	return keyPair{ours: k, lp: lp, id: id}, nil
}

// server tracks the server-side connections of a stack and their
// goroutines.
type server struct {
	live  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[io.Closer]struct{}
}

func newServer() *server { return &server{conns: map[io.Closer]struct{}{}} }

// track runs acceptStreams for conn c until it fails, serving each stream.
func (s *server) track(c io.Closer, acceptStream func() (stream, error)) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.live.Add(1)
	s.wg.Go(func() {
		defer func() {
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.live.Add(-1)
		}()
		for {
			st, err := acceptStream()
			if err != nil {
				return
			}
			s.wg.Go(func() { serveStream(st) })
		}
	})
}

// closeAll closes the tracked connections and waits for every goroutine.
func (s *server) closeAll() {
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// serveStream runs the mode the stream's first byte names.
func serveStream(st stream) {
	defer st.Close()
	// A small buffer first, grown once a read fills it: an echo stream
	// left open (a floor connection's) should not hold 64 KiB.
	buf := make([]byte, 512)
	var mode [1]byte
	if _, err := io.ReadFull(st, mode[:]); err != nil {
		return
	}
	for {
		n, err := st.Read(buf)
		if n > 0 && mode[0] == modeEcho {
			if _, werr := st.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF && mode[0] == modeSink {
				st.Write([]byte{'k'})
			}
			if err == io.EOF {
				st.CloseWrite()
			}
			return
		}
		if n == len(buf) && len(buf) < 64<<10 {
			buf = make([]byte, 64<<10)
		}
	}
}

// concordStack is Concord's TCP transport and upgrader with its defaults
// (yamux inlined in the handshake), offering only the security protocol of
// -security, except the listener's admission limits (benchAdmission).
type concordStack struct {
	o      *options
	srvID  peer.ID
	addr   ma.Multiaddr
	ln     *upgrader.Listener
	client *upgrader.Upgrader
	tr     *tcp.Transport
	srv    *server
	stages *stageLog
	cancel context.CancelFunc
	done   chan struct{}
}

// stageLog records the stage durations of the client's successful
// upgrades, from the upgrader's observer hook.
type stageLog struct {
	mu  sync.Mutex
	log []upgrader.StageDurations
}

func (l *stageLog) observe(e upgrader.Event) {
	if f, ok := e.(upgrader.UpgradeFinished); ok && f.Err == nil {
		l.mu.Lock()
		l.log = append(l.log, f.Durations)
		l.mu.Unlock()
	}
}

// Stages returns the durations recorded since the last call.
func (s *concordStack) Stages() []upgrader.StageDurations {
	s.stages.mu.Lock()
	defer s.stages.mu.Unlock()
	l := s.stages.log
	s.stages.log = nil
	return l
}

// benchAdmission raises a Concord listener's admission limits so that 64
// concurrent dialers from 127.0.0.1 are never refused or put on
// probation: the defaults (16 upgrades in flight per source IP, 32 per
// /24) are meant for the Internet.
var benchAdmission = upgrader.Config{
	MaxInboundUpgrades:          256,
	MaxInboundUpgradesPerIP:     256,
	MaxInboundUpgradesPerSubnet: 256,
	MaxInboundProbation:         256,
	MaxInboundProbationPerIP:    256,
	AcceptBacklog:               256,
	// The default first-byte timeout (1 s) is a slow-loris defence; on a
	// 2-core machine shared with other work a dialer can be descheduled
	// that long, and the run would end on a refused connection.
	FirstByteTimeout: 10 * time.Second,
}

// secProtocol is the protocol ID of -security.
func (o *options) secProtocol() string {
	if o.security == "tls" {
		return tls.ID
	}
	return noise.ID
}

// concordSecurity offers -security only; in mode first, neither end
// remembers verified peers or resumes a TLS session (every dial is a
// first contact for both).
func concordSecurity(o *options) upgrader.SecurityConfig {
	sc := upgrader.SecurityConfig{Protocols: []string{o.secProtocol()}}
	if o.mode == "first" {
		sc.Noise.VerifiedCacheSize = -1
		sc.TLS.VerifiedCacheSize = -1
		sc.TLS.SessionCacheSize = -1
	}
	return sc
}

// concordMuxers is nil (Concord's defaults) unless an analysis flag
// replaces yamux's ReadBufferSize or MaxMessageSize.
func concordMuxers(o *options) ([]muxer.Muxer, error) {
	if o.readBuf == 0 && o.maxMsg == 0 {
		return nil, nil
	}
	m, err := yamux.New(yamux.Config{ReadBufferSize: o.readBuf, MaxMessageSize: uint32(o.maxMsg)})
	if err != nil {
		return nil, err
	}
	return []muxer.Muxer{m}, nil
}

// newConcordClient is a dialing upgrader with a new identity.
func newConcordClient(o *options, st *stageLog) (*upgrader.Upgrader, error) {
	muxers, err := concordMuxers(o)
	if err != nil {
		return nil, err
	}
	ck, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		return nil, err
	}
	return upgrader.New(upgrader.Config{Identity: ck, Security: concordSecurity(o),
		Muxer: upgrader.MuxerConfig{Muxers: muxers}, Observer: st.observe})
}

// newConcord starts Concord's stack.
func newConcord(o *options) (stack, error) {
	muxers, err := concordMuxers(o)
	if err != nil {
		return nil, err
	}
	sk, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	cfg := benchAdmission
	cfg.Identity, cfg.Security, cfg.Muxer = sk.ours, concordSecurity(o), upgrader.MuxerConfig{Muxers: muxers}
	su, err := upgrader.New(cfg)
	if err != nil {
		return nil, err
	}
	st := &stageLog{}
	cu, err := newConcordClient(o, st)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	tl, err := tcp.New(tcp.Config{}).Listen(ctx, loopback)
	if err != nil {
		cancel()
		return nil, err
	}
	ln := su.Listen(tl)
	s := &concordStack{o: o, srvID: sk.id, addr: ln.Multiaddr(), ln: ln, client: cu, tr: tcp.New(tcp.Config{}),
		srv: newServer(), stages: st, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.srv.track(c, func() (stream, error) { return c.AcceptStream(ctx) })
		}
	}()
	return s, nil
}

func (s *concordStack) Name() string { return "Concord" }

func (s *concordStack) Target() (string, string) { return s.addr.String(), string(s.srvID) }
func (s *concordStack) Retarget(addr, id string) error {
	a, err := ma.NewMultiaddr(addr)
	s.addr, s.srvID = a, peer.ID(id)
	return err
}
func (s *concordStack) Live() int64 { return s.srv.live.Load() }

func (s *concordStack) Dial(ctx context.Context) (clientConn, error) {
	cu := s.client
	if s.o.mode == "newid" {
		var err error
		if cu, err = newConcordClient(s.o, s.stages); err != nil {
			return nil, err
		}
	}
	raw, err := s.tr.Dial(ctx, s.addr)
	if err != nil {
		return nil, err
	}
	c, err := cu.Upgrade(ctx, raw, network.DirOutbound, s.srvID)
	if err != nil {
		return nil, err
	}
	return concordClient{c}, nil
}

func (s *concordStack) Close() error {
	s.cancel()
	err := s.ln.Close()
	<-s.done
	s.srv.closeAll()
	return err
}

type concordClient struct{ c *upgrader.Conn }

func (c concordClient) OpenStream(ctx context.Context) (stream, error) { return c.c.OpenStream(ctx) }
func (c concordClient) Close() error                                   { return c.c.Close() }

// libp2pStack is a go-libp2p transport.Transport on both ends, either
// go-libp2p v0.52's TCP transport and upgrader as a go-libp2p host
// configures them (-security's protocol with yamux offered inside the
// handshake, go-libp2p's yamux defaults, no resource manager and no
// connection gater), or the Concord transport of the libp2p module
// (golibp2p-on-concord), with the same raised admission limits as
// concordStack.
type libp2pStack struct {
	name      string
	o         *options
	srvID     lppeer.ID
	addr      ma.Multiaddr
	ln        lptransport.Listener
	client    lptransport.Transport
	newClient func(lpcrypto.PrivKey) (lptransport.Transport, error)
	srv       *server
	done      chan struct{}
}

// newLibp2pTransport is go-libp2p's stock TCP transport for key.
func newLibp2pTransport(o *options) func(lpcrypto.PrivKey) (lptransport.Transport, error) {
	return func(k lpcrypto.PrivKey) (lptransport.Transport, error) {
		muxers := []lpupgrader.StreamMuxer{{ID: lpyamux.ID, Muxer: lpyamux.DefaultTransport}}
		var sec lpsec.SecureTransport
		var err error
		if o.security == "tls" {
			sec, err = lptls.New(lptls.ID, k, muxers)
		} else {
			sec, err = lpnoise.New(lpnoise.ID, k, muxers)
		}
		if err != nil {
			return nil, err
		}
		u, err := lpupgrader.New([]lpsec.SecureTransport{sec}, muxers, nil, nil, nil)
		if err != nil {
			return nil, err
		}
		return lptcp.NewTCPTransport(u, nil, nil)
	}
}

// newOnConcordTransport is the libp2p module's Concord transport for key.
func newOnConcordTransport(o *options) func(lpcrypto.PrivKey) (lptransport.Transport, error) {
	return func(k lpcrypto.PrivKey) (lptransport.Transport, error) {
		muxers, err := concordMuxers(o)
		if err != nil {
			return nil, err
		}
		cfg := benchAdmission
		cfg.Security, cfg.Muxer = concordSecurity(o), upgrader.MuxerConfig{Muxers: muxers}
		return concordlibp2p.NewTransport(k, nil, nil, concordlibp2p.WithConfig(concordlibp2p.Config{Upgrader: cfg}))
	}
}

func newLibp2p(o *options) (stack, error) {
	return startLibp2pStack("go-libp2p", o, newLibp2pTransport(o))
}

func newOnConcord(o *options) (stack, error) {
	return startLibp2pStack("go-libp2p on Concord", o, newOnConcordTransport(o))
}

func startLibp2pStack(name string, o *options, newTransport func(lpcrypto.PrivKey) (lptransport.Transport, error)) (stack, error) {
	sk, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	ck, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	st, err := newTransport(sk.lp)
	if err != nil {
		return nil, err
	}
	ct, err := newTransport(ck.lp)
	if err != nil {
		return nil, err
	}
	ln, err := st.Listen(loopback)
	if err != nil {
		return nil, err
	}
	s := &libp2pStack{name: name, o: o, srvID: lppeer.ID(sk.id), addr: ln.Multiaddr(), ln: ln, client: ct, newClient: newTransport,
		srv: newServer(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.srv.track(c, func() (stream, error) { return c.AcceptStream() })
		}
	}()
	return s, nil
}

func (s *libp2pStack) Name() string { return s.name }

func (s *libp2pStack) Target() (string, string) { return s.addr.String(), string(s.srvID) }
func (s *libp2pStack) Retarget(addr, id string) error {
	a, err := ma.NewMultiaddr(addr)
	s.addr, s.srvID = a, lppeer.ID(id)
	return err
}
func (s *libp2pStack) Live() int64 { return s.srv.live.Load() }

func (s *libp2pStack) Dial(ctx context.Context) (clientConn, error) {
	ct := s.client
	if s.o.mode == "newid" {
		k, _, err := lpcrypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, err
		}
		if ct, err = s.newClient(k); err != nil {
			return nil, err
		}
	}
	c, err := ct.Dial(ctx, s.addr, s.srvID)
	if err != nil {
		return nil, err
	}
	return libp2pClient{c}, nil
}

func (s *libp2pStack) Close() error {
	err := s.ln.Close()
	<-s.done
	s.srv.closeAll()
	return err
}

type libp2pClient struct{ c lptransport.CapableConn }

func (c libp2pClient) OpenStream(ctx context.Context) (stream, error) { return c.c.OpenStream(ctx) }
func (c libp2pClient) Close() error                                   { return c.c.Close() }

// waitLive waits until the stack's server holds want connections, for at
// most d.
func waitLive(s stack, want int64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for s.Live() != want {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: server holds %d connections after %v, want %d", s.Name(), s.Live(), d, want)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

var errShortEcho = errors.New("echo returned the wrong byte")
