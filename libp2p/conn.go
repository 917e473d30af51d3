package concordlibp2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// conn is an upgraded connection as go-libp2p's CapableConn.
type conn struct {
	t      *Transport
	uc     *upgrader.Conn
	raw    *rawConn
	pub    lcrypto.PubKey
	opened time.Time

	// streams are the streams handed out and not yet closed or reset by
	// their user; Close decides what to do with them.
	mu      sync.Mutex
	streams map[*stream]struct{}
	closing bool

	closeOnce sync.Once
}

var (
	_ transport.CapableConn = (*conn)(nil)
	_ lnetwork.ConnStat     = (*conn)(nil)
)

func newConn(t *Transport, uc *upgrader.Conn, raw *rawConn, pub lcrypto.PubKey) *conn {
	return &conn{t: t, uc: uc, raw: raw, pub: pub, opened: time.Now(), streams: map[*stream]struct{}{}}
}

func (c *conn) LocalPeer() lpeer.ID             { return lpeer.ID(c.uc.LocalPeer()) }
func (c *conn) RemotePeer() lpeer.ID            { return lpeer.ID(c.uc.RemotePeer()) }
func (c *conn) RemotePublicKey() lcrypto.PubKey { return c.pub }
func (c *conn) LocalMultiaddr() ma.Multiaddr    { return c.raw.LocalMultiaddr() }
func (c *conn) RemoteMultiaddr() ma.Multiaddr   { return c.raw.RemoteMultiaddr() }
func (c *conn) Scope() lnetwork.ConnScope       { return c.raw.scope }
func (c *conn) Transport() transport.Transport  { return c.t }
func (c *conn) IsClosed() bool                  { return c.uc.IsClosed() }

func (c *conn) ConnState() lnetwork.ConnectionState {
	return lnetwork.ConnectionState{
		StreamMultiplexer:         protocol.ID(c.uc.Muxer()),
		Security:                  protocol.ID(c.uc.Security()),
		Transport:                 "tcp",
		UsedEarlyMuxerNegotiation: c.uc.MuxerInlined(),
	}
}

// Stat reports the direction go-libp2p expects (dialed: outbound, also
// after a TCP simultaneous open; a hole punch's server side: inbound) and
// when the upgrade finished. Extra holds the Concord role and, after an
// election, its record, under the keys StatRole and StatElection.
func (c *conn) Stat() lnetwork.ConnStats {
	extra := map[any]any{StatRole: c.uc.Role().String()}
	if e := c.uc.Election(); e != nil {
		extra[StatElection] = *e
	}
	c.mu.Lock()
	n := len(c.streams)
	c.mu.Unlock()
	return lnetwork.ConnStats{
		Stats:      lnetwork.Stats{Direction: c.raw.dir, Opened: c.opened, Extra: extra},
		NumStreams: n,
	}
}

// Keys of ConnStats.Extra.
type statKey string

const (
	StatRole     statKey = "concord.role"     // string: "initiator" or "responder"
	StatElection statKey = "concord.election" // simopen.Election, after a simultaneous open
)

// Close closes the connection gracefully (when the session has not ended
// already): streams the user has not closed
// for writing are reset (go-libp2p's swarm resets them right after
// anyway), streams half-closed by the user stop reading, and then the
// session shuts down: everything written is sent, a go-away follows, and
// the TCP connection closes with FIN once the peer has closed in return,
// within Config.CloseTimeout.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		if c.uc.IsClosed() {
			// The session has already ended (the peer's go-away, a
			// keepalive failure): nothing can be sent any more, and
			// what the streams received stays readable.
			return
		}
		c.mu.Lock()
		c.closing = true
		open := make([]*stream, 0, len(c.streams))
		for s := range c.streams {
			open = append(open, s)
		}
		c.mu.Unlock()
		for _, s := range open {
			s.abandon()
		}
		d := c.t.cfg.closeTimeout()
		if d > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			// An error says delivery is unconfirmed (the peer did not
			// close in return in time); the close happens regardless.
			_ = c.uc.Session().Shutdown(ctx)
			cancel()
		}
		_ = c.uc.Close()
	})
	return nil
}

// CloseWithError closes at once, as go-libp2p's yamux does: it sends a
// go-away carrying code, which the peer's go-libp2p reads as a
// network.ConnError with Remote set, and closes; what is still queued may
// be lost. Code 0 (network.ConnNoError) closes gracefully, as Close does.
func (c *conn) CloseWithError(code lnetwork.ConnErrorCode) error {
	cs, ok := c.uc.Session().(muxer.CodedSession)
	if code == lnetwork.ConnNoError || !ok {
		return c.Close()
	}
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		clear(c.streams) // the session's close ends them
		c.mu.Unlock()
		_ = cs.CloseWithError(uint32(code))
		_ = c.uc.Close()
	})
	return nil
}

func (c *conn) OpenStream(ctx context.Context) (lnetwork.MuxedStream, error) {
	s, err := c.uc.OpenStream(ctx)
	if err != nil {
		return nil, mapErr(err)
	}
	return c.add(s)
}

func (c *conn) AcceptStream() (lnetwork.MuxedStream, error) {
	s, err := c.uc.AcceptStream(context.Background())
	if err != nil {
		return nil, mapErr(err)
	}
	return c.add(s)
}

func (c *conn) add(ms muxer.Stream) (lnetwork.MuxedStream, error) {
	s := &stream{Stream: ms, c: c}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		_ = ms.Reset()
		return nil, fmt.Errorf("concordlibp2p: connection closing: %w", lnetwork.ErrReset)
	}
	c.streams[s] = struct{}{}
	return s, nil
}

func (c *conn) remove(s *stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}

// stream is a Concord stream as go-libp2p's MuxedStream.
type stream struct {
	muxer.Stream
	c *conn

	mu          sync.Mutex
	wroteClosed bool // CloseWrite called
}

// Read returns data before errors: when the session has ended (the peer's
// go-away after its last bytes, say), go-yamux returns the bytes it had
// buffered together with the error of the window update it could not
// send, and a reader that stops at the first error (io.Copy) would lose
// the rest of the buffered data and the EOF behind it. Holding the error
// back is safe: the next Read reads on, and reports EOF, a reset or the
// session's end once nothing is left.
func (s *stream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	if n > 0 && err != nil && err != io.EOF {
		return n, nil
	}
	return n, mapErr(err)
}

func (s *stream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	return n, mapErr(err)
}

func (s *stream) CloseWrite() error {
	s.mu.Lock()
	s.wroteClosed = true
	s.mu.Unlock()
	return mapErr(s.Stream.CloseWrite())
}

func (s *stream) CloseRead() error { return mapErr(s.Stream.CloseRead()) }

// Close closes both directions: the peer reads what was written, then EOF.
func (s *stream) Close() error {
	defer s.c.remove(s)
	return mapErr(s.Stream.Close())
}

// Reset aborts the stream and tells the peer. Once the session has ended
// there is no one to tell, and Reset only releases the stream: data it had
// received stays readable up to the peer's EOF. go-libp2p's swarm resets
// every stream of a connection that ended, "just for cleaning up state";
// a real reset there would throw away the last bytes a peer sent before
// its go-away.
func (s *stream) Reset() error {
	defer s.c.remove(s)
	if s.c.uc.IsClosed() {
		return nil
	}
	return mapErr(s.Stream.Reset())
}

// ResetWithError resets with code in the reset frame, which the peer's
// go-libp2p reads as a network.StreamError with Remote set.
func (s *stream) ResetWithError(code lnetwork.StreamErrorCode) error {
	cs, ok := s.Stream.(muxer.CodedStream)
	if !ok {
		return s.Reset()
	}
	defer s.c.remove(s)
	if s.c.uc.IsClosed() {
		return nil
	}
	return mapErr(cs.ResetWithError(uint32(code)))
}

// abandon ends a stream its user left open when the connection closes: one
// the user half-closed keeps its written data (it only stops reading), any
// other is reset, as go-libp2p's swarm would.
func (s *stream) abandon() {
	s.mu.Lock()
	wc := s.wroteClosed
	s.mu.Unlock()
	if wc {
		_ = s.Stream.Close()
	} else {
		_ = s.Stream.Reset()
	}
	s.c.remove(s)
}

// mapErr makes Concord's muxer errors the ones go-libp2p's yamux returns,
// all of which match network.ErrReset: a reset stream is a
// network.StreamError with the reset's code; a session that ended with a
// go-away, the peer's or a local close, is a network.ConnError with the
// go-away's code; any other end of the session (keepalive, the connection
// lost) is network.ErrReset. Concord's own error stays in the chain.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var me *muxer.Error
	if errors.As(err, &me) {
		switch {
		case me.Kind == muxer.ErrStreamReset:
			return &lnetwork.StreamError{ErrorCode: lnetwork.StreamErrorCode(me.Code), Remote: me.Remote, TransportError: err}
		case me.Kind != muxer.ErrSessionClosed:
		case me.Remote && errors.Is(me.Err, muxer.ErrGoAway):
			return &lnetwork.ConnError{ErrorCode: lnetwork.ConnErrorCode(me.Code), Remote: true, TransportError: err}
		case errors.Is(me.Err, net.ErrClosed):
			return &lnetwork.ConnError{ErrorCode: lnetwork.ConnErrorCode(me.Code), TransportError: err}
		}
	}
	if errors.Is(err, muxer.ErrStreamReset) || errors.Is(err, muxer.ErrSessionClosed) {
		return &resetError{err}
	}
	return err
}

type resetError struct{ err error }

func (e *resetError) Error() string   { return e.err.Error() }
func (e *resetError) Unwrap() []error { return []error{lnetwork.ErrReset, e.err} }
func (e *resetError) Timeout() bool   { return false }
func (e *resetError) Temporary() bool { return false }

// As sets target to one of the connection's layers and reports whether it
// could: *upgrader.Conn (Concord's upgraded connection), *tcp.Conn or
// *net.TCPConn. Reading or writing a lower layer corrupts the session.
func (c *conn) As(target any) bool {
	switch p := target.(type) {
	case **upgrader.Conn:
		*p = c.uc
	case **tcp.Conn:
		*p = c.raw.Conn
	case **net.TCPConn:
		*p = c.raw.TCPConn
	default:
		return false
	}
	return true
}
