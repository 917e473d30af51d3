package main

import (
	"context"
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
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
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
	buf := make([]byte, 64<<10)
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
	}
}

// concordStack is Concord's TCP transport and upgrader with its defaults
// (Noise, yamux inlined) except the listener's admission limits, raised so
// that 64 concurrent dialers from one address are not refused: the
// defaults (16 upgrades in flight per source IP) are meant for the
// Internet, and every dialer here is 127.0.0.1.
type concordStack struct {
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

// newConcord starts Concord's stack. Non-zero readBuf and maxMsg replace
// Concord's yamux defaults for ReadBufferSize and MaxMessageSize (analysis
// knobs, see -h).
func newConcord(readBuf int, maxMsg uint32) (stack, error) {
	var muxers []muxer.Muxer
	if readBuf != 0 || maxMsg != 0 {
		m, err := yamux.New(yamux.Config{ReadBufferSize: readBuf, MaxMessageSize: maxMsg})
		if err != nil {
			return nil, err
		}
		muxers = []muxer.Muxer{m}
	}
	sk, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	ck, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	su, err := upgrader.New(upgrader.Config{
		Identity:                sk.ours,
		Muxer:                   upgrader.MuxerConfig{Muxers: muxers},
		MaxInboundUpgrades:      256,
		MaxInboundUpgradesPerIP: 256,
		AcceptBacklog:           256,
	})
	if err != nil {
		return nil, err
	}
	st := &stageLog{}
	cu, err := upgrader.New(upgrader.Config{Identity: ck.ours, Muxer: upgrader.MuxerConfig{Muxers: muxers}, Observer: st.observe})
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
	s := &concordStack{srvID: sk.id, addr: ln.Multiaddr(), ln: ln, client: cu, tr: tcp.New(tcp.Config{}),
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
func (s *concordStack) Live() int64  { return s.srv.live.Load() }

func (s *concordStack) Dial(ctx context.Context) (clientConn, error) {
	raw, err := s.tr.Dial(ctx, s.addr)
	if err != nil {
		return nil, err
	}
	c, err := s.client.Upgrade(ctx, raw, network.DirOutbound, s.srvID)
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

// libp2pStack is go-libp2p v0.52's TCP transport and upgrader as a
// go-libp2p host configures them with Noise and yamux: yamux offered inside
// the Noise handshake, go-libp2p's yamux defaults, no resource manager
// (go-libp2p's NullResourceManager) and no connection gater.
type libp2pStack struct {
	srvID  lppeer.ID
	ln     lptransport.Listener
	client *lptcp.TcpTransport
	srv    *server
	done   chan struct{}
}

func newLibp2pTransport(k lpcrypto.PrivKey) (*lptcp.TcpTransport, error) {
	muxers := []lpupgrader.StreamMuxer{{ID: lpyamux.ID, Muxer: lpyamux.DefaultTransport}}
	n, err := lpnoise.New(lpnoise.ID, k, muxers)
	if err != nil {
		return nil, err
	}
	u, err := lpupgrader.New([]lpsec.SecureTransport{n}, muxers, nil, nil, nil)
	if err != nil {
		return nil, err
	}
	return lptcp.NewTCPTransport(u, nil, nil)
}

func newLibp2p() (stack, error) {
	sk, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	ck, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	st, err := newLibp2pTransport(sk.lp)
	if err != nil {
		return nil, err
	}
	ct, err := newLibp2pTransport(ck.lp)
	if err != nil {
		return nil, err
	}
	ln, err := st.Listen(loopback)
	if err != nil {
		return nil, err
	}
	s := &libp2pStack{srvID: lppeer.ID(sk.id), ln: ln, client: ct, srv: newServer(), done: make(chan struct{})}
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

func (s *libp2pStack) Name() string { return "go-libp2p" }
func (s *libp2pStack) Live() int64  { return s.srv.live.Load() }

func (s *libp2pStack) Dial(ctx context.Context) (clientConn, error) {
	c, err := s.client.Dial(ctx, s.ln.Multiaddr(), s.srvID)
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
