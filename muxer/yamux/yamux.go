package yamux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
)

// ID is the protocol ID of yamux in multistream-select, Noise's
// stream_muxers and TLS ALPN.
const ID = "/yamux/1.0.0"

// ErrUnknownRole is returned by NewSession for a Role other than
// RoleInitiator or RoleResponder.
var ErrUnknownRole = errors.New("yamux: role must be initiator or responder")

// Muxer is the yamux muxer.Muxer. It is immutable and safe for concurrent
// use; one value serves every connection.
type Muxer struct {
	cfg Config // resolved
}

var _ muxer.Muxer = (*Muxer)(nil)

// New returns a Muxer with cfg, whose zero fields mean Concord's defaults.
func New(cfg Config) (*Muxer, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	return &Muxer{cfg: r}, nil
}

// ID returns "/yamux/1.0.0".
func (m *Muxer) ID() string { return ID }

// NewSession starts a yamux session over conn, which it owns: the yamux
// client for RoleInitiator (odd stream IDs), the server for RoleResponder.
// go-yamux's goroutines (receive and send loops, RTT measurement,
// keepalive timer) end when the session closes.
func (m *Muxer) NewSession(conn net.Conn, role network.Role) (muxer.Session, error) {
	return m.newSession(conn, role)
}

func (m *Muxer) newSession(conn net.Conn, role network.Role) (*session, error) {
	gc := newGuardedConn(conn)
	var (
		ys  *yamux.Session
		err error
	)
	switch role {
	case network.RoleInitiator:
		ys, err = yamux.Client(gc, m.cfg.yamuxConfig(), nil)
	case network.RoleResponder:
		ys, err = yamux.Server(gc, m.cfg.yamuxConfig(), nil)
	default:
		return nil, fmt.Errorf("%w, got %v", ErrUnknownRole, role)
	}
	if err != nil { // New checked the Config: a bug here
		return nil, fmt.Errorf("yamux: starting session: %w", err)
	}
	return &session{ys: ys, conn: gc, cfg: &m.cfg, acceptCh: make(chan *yamux.Stream)}, nil
}

// session adapts *yamux.Session to muxer.Session.
type session struct {
	ys   *yamux.Session
	conn *guardedConn
	cfg  *Config

	// acceptCh carries streams from the accept goroutine, started by the
	// first AcceptStream whose context can end, to AcceptStream callers.
	// Unbuffered: at most one stream waits outside go-yamux's backlog. A
	// caller whose context never ends, before any other kind came, accepts
	// from go-yamux directly: an idle session then keeps no goroutine of
	// Concord's.
	acceptOnce sync.Once
	looping    atomic.Bool
	acceptCh   chan *yamux.Stream

	// The streams handed to the application and not yet ended, for
	// Shutdown. go-yamux announces no stream's end, but every end a stream
	// has on this side passes through its wrapper (see stream.end).
	mu       sync.Mutex
	live     int
	idle     chan struct{} // closed when live drops to 0; nil while it is 0
	draining bool          // Shutdown is going away: no stream is handed out

	errOnce sync.Once
	err     *muxer.Error // why the session closed, once it has
}

var _ muxer.CodedSession = (*session)(nil)

// admit counts a stream about to be handed to the application. It fails
// once Shutdown has decided to go away.
func (s *session) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if s.live == 0 {
		s.idle = make(chan struct{})
	}
	s.live++
	return true
}

// release uncounts a stream admitted before.
func (s *session) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live--; s.live == 0 {
		close(s.idle)
		s.idle = nil
	}
}

// drainIfIdle stops admitting streams and returns nil if none is live;
// otherwise it returns a channel closed when none is.
func (s *session) drainIfIdle() (idle <-chan struct{}, live int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live == 0 {
		s.draining = true
	}
	return s.idle, s.live
}

var errShuttingDown = fmt.Errorf("%w: the session is shutting down", net.ErrClosed)

func (s *session) OpenStream(ctx context.Context) (muxer.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open stream: %w", context.Cause(ctx))
	}
	if s.ys.IsClosed() {
		return nil, s.opErr("open stream")
	}
	if !s.admit() {
		return nil, &muxer.Error{Op: "open stream", Kind: muxer.ErrSessionClosed, Err: errShuttingDown}
	}
	ys, err := s.ys.OpenStream(ctx)
	if err == nil {
		return s.wrap(ys), nil
	}
	s.release()
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("open stream: %w", context.Cause(ctx))
	case s.ys.IsClosed():
		return nil, s.opErr("open stream")
	case errors.Is(err, yamux.ErrStreamsExhausted):
		return nil, &muxer.Error{Op: "open stream", Kind: muxer.ErrStreamsExhausted}
	}
	// Otherwise go-yamux fails an open only when its memory manager
	// refuses, and it has none.
	return nil, &muxer.Error{Op: "open stream", Kind: muxer.ErrSessionClosed, Err: err}
}

func (s *session) AcceptStream(ctx context.Context) (muxer.Stream, error) {
	if s.ys.IsClosed() {
		return nil, s.opErr("accept stream")
	}
	if ctx.Done() == nil && !s.looping.Load() {
		return s.acceptDirect()
	}
	s.acceptOnce.Do(func() {
		s.looping.Store(true)
		go s.acceptLoop()
	})
	for {
		select {
		case ys := <-s.acceptCh:
			if s.admit() {
				return s.wrap(ys), nil
			}
			_ = ys.Reset() // it crossed Shutdown's go-away: refused, not cut later
		case <-ctx.Done():
			return nil, fmt.Errorf("accept stream: %w", context.Cause(ctx))
		case <-s.ys.CloseChan():
			return nil, s.opErr("accept stream")
		}
	}
}

// acceptDirect is AcceptStream for a context that never ends: go-yamux's
// own AcceptStream, which returns when the session closes.
func (s *session) acceptDirect() (muxer.Stream, error) {
	for {
		ys, err := s.ys.AcceptStream()
		if err != nil {
			return nil, s.opErr("accept stream")
		}
		if s.admit() {
			return s.wrap(ys), nil
		}
		_ = ys.Reset() // it crossed Shutdown's go-away: refused, not cut later
	}
}

// acceptLoop hands go-yamux's accepted streams to AcceptStream callers
// until the session closes.
func (s *session) acceptLoop() {
	for {
		ys, err := s.ys.AcceptStream()
		if err != nil {
			return // the session has closed
		}
		select {
		case s.acceptCh <- ys:
		case <-s.ys.CloseChan():
			_ = ys.Reset()
			return
		}
	}
}

func (s *session) Ping(ctx context.Context) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ping: %w", context.Cause(ctx))
	}
	if s.ys.IsClosed() {
		// go-yamux's Ping may join one that completed just before the
		// close and report its success.
		return 0, s.opErr("ping")
	}
	// go-yamux's Ping takes no context; it returns within two ping
	// timeouts or when the session closes, and so does this goroutine.
	type result struct {
		rtt time.Duration
		err error
	}
	done := make(chan result, 1)
	go func() {
		rtt, err := s.ys.Ping()
		done <- result{rtt, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		return 0, fmt.Errorf("ping: %w", context.Cause(ctx))
	}
	switch {
	case r.err == nil:
		return r.rtt, nil
	case s.ys.IsClosed():
		return 0, s.opErr("ping")
	case errors.Is(r.err, yamux.ErrTimeout):
		return 0, &muxer.Error{Op: "ping", Kind: os.ErrDeadlineExceeded,
			Err: fmt.Errorf("no answer within the ping timeout %v", s.cfg.PingTimeout)}
	}
	return 0, &muxer.Error{Op: "ping", Kind: muxer.ErrSessionClosed, Err: r.err}
}

func (s *session) Close() error {
	_ = s.ys.Close() // always nil
	return nil
}

// CloseWithError is go-yamux's: it stops sending, writes a go-away with
// code (none for 0) within its write timeout, and closes.
func (s *session) CloseWithError(code uint32) error {
	_ = s.ys.CloseWithError(code) // always nil
	return nil
}

// Shutdown waits for the application's streams to end, then sends a
// go-away and waits for the peer to close.
//
// go-yamux's send queue is first in, first out (pings and pongs jump it),
// so once the go-away has been written (guardedConn.goAwaySent) everything
// the streams queued before has been too. go-yamux v5 ends a session as
// soon as it reads a normal go-away, having handled every frame before it,
// and closes its connection; our receive loop then reads EOF. Closing
// only then leaves nothing unread in our receive buffer, so the close is a
// FIN, not an RST that could destroy data still in flight to the peer. The
// peer's go-yamux drops streams it had not accepted when it ends, so data
// is delivered only on streams the peer accepted; protocols that negotiate
// before writing (multistream-select) always have.
//
// Once no stream is live, admit fails: AcceptStream resets streams the
// peer opens from then on, and go-yamux resets those whose SYN it reads
// after GoAway has marked the session. A stream that crosses the go-away
// is therefore refused, never handed out and then cut by the peer's close.
func (s *session) Shutdown(ctx context.Context) error {
	if err := s.goAway(ctx); err != nil {
		s.Close()
		return err
	}
	defer s.Close()
	return s.linger(ctx)
}

// ShutdownAsync is Shutdown without its wait for the peer's close: once
// the go-away is written it returns, and a goroutine of the session waits
// for the peer's close, at most the linger, and then closes. A peer that
// has gone already (the session closed) is not waited for.
func (s *session) ShutdownAsync(ctx context.Context) error {
	if err := s.goAway(ctx); err != nil {
		s.Close()
		return err
	}
	if s.ys.IsClosed() {
		return nil
	}
	go func() {
		defer s.Close()
		_ = s.linger(context.Background())
	}()
	return nil
}

// goAway waits for the streams to end, then queues the go-away and waits
// until it has been written: the first part of Shutdown.
func (s *session) goAway(ctx context.Context) error {
	for {
		idle, live := s.drainIfIdle()
		if idle == nil {
			break
		}
		select {
		case <-idle:
		case <-s.ys.CloseChan():
			return fmt.Errorf("shutdown: waiting for streams: %w", s.opErr("shutdown"))
		case <-ctx.Done():
			return fmt.Errorf("shutdown: %d streams still open: %w", live, context.Cause(ctx))
		}
	}
	// GoAway blocks only while go-yamux's send queue is full; Close ends it.
	queued := make(chan error, 1)
	go func() { queued <- s.ys.GoAway() }()
	select {
	case err := <-queued:
		if err != nil {
			return fmt.Errorf("shutdown: sending go-away: %w", s.opErr("shutdown"))
		}
	case <-ctx.Done():
		return fmt.Errorf("shutdown: go-away not queued: %w", context.Cause(ctx))
	}
	select {
	case <-s.conn.goAwaySent:
	case <-s.ys.CloseChan():
		select {
		case <-s.conn.goAwaySent:
			return nil // the peer closed in answer before this select looked
		default:
			return fmt.Errorf("shutdown: closed before the go-away was written: %w", s.opErr("shutdown"))
		}
	case <-ctx.Done():
		return fmt.Errorf("shutdown: go-away not written: %w", context.Cause(ctx))
	}
	return nil
}

// linger waits, once the go-away is written, for the peer's close: the
// proof of delivery. One that does not close on go-away (not go-yamux v5)
// or is gone gets a short linger, and delivery is unconfirmed.
func (s *session) linger(ctx context.Context) error {
	linger := time.NewTimer(shutdownLinger)
	defer linger.Stop()
	select {
	case <-s.ys.CloseChan():
		return nil
	case <-linger.C:
		return fmt.Errorf("shutdown: %w", errUnconfirmed)
	case <-ctx.Done():
		return fmt.Errorf("shutdown: %w: %w", errUnconfirmed, context.Cause(ctx))
	}
}

var errUnconfirmed = errors.New("the peer did not close after the go-away; delivery unconfirmed")

// shutdownLinger bounds Shutdown's wait for the peer's close once the
// go-away is written.
const shutdownLinger = 2 * time.Second

func (s *session) Done() <-chan struct{} { return s.ys.CloseChan() }

func (s *session) IsClosed() bool { return s.ys.IsClosed() }

func (s *session) NumStreams() int { return s.ys.NumStreams() }

func (s *session) Err() error {
	if !s.ys.IsClosed() {
		return nil
	}
	return s.closeErr()
}

// closeErr returns the classified reason the session closed; on an open
// session, a bare ErrSessionClosed.
func (s *session) closeErr() *muxer.Error {
	if !s.ys.IsClosed() {
		return &muxer.Error{Op: "session", Kind: muxer.ErrSessionClosed}
	}
	s.errOnce.Do(func() {
		// go-yamux v5.1.0 has no accessor for its shutdown error; its
		// operations fail with it, and OpenStream on a closed session
		// returns it before doing anything else.
		_, cause := s.ys.OpenStream(context.Background())
		s.err = closeCause(cause, s.conn.firstErr())
	})
	return s.err
}

// opErr is the error of an operation that failed because the session
// closed.
func (s *session) opErr(op string) error {
	ce := s.closeErr()
	return &muxer.Error{Op: op, Kind: muxer.ErrSessionClosed, Remote: ce.Remote, Code: ce.Code, Err: ce.Err}
}
