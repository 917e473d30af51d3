package yamux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
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
	cfg resolved
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

// NewSession starts a yamux session over conn: the yamux client for
// RoleInitiator (odd stream IDs), the server for RoleResponder. The session
// owns conn. It starts go-yamux's goroutines (receive loop, send loop, RTT
// measurement, keepalive timer), all of which end when the session closes.
func (m *Muxer) NewSession(conn net.Conn, role network.Role) (muxer.Session, error) {
	return m.newSession(conn, role)
}

func (m *Muxer) newSession(conn net.Conn, role network.Role) (*session, error) {
	rc := newGuardedConn(conn)
	var (
		ys  *yamux.Session
		err error
	)
	switch role {
	case network.RoleInitiator:
		ys, err = yamux.Client(rc, m.cfg.yamuxConfig(), nil)
	case network.RoleResponder:
		ys, err = yamux.Server(rc, m.cfg.yamuxConfig(), nil)
	default:
		return nil, fmt.Errorf("%w, got %v", ErrUnknownRole, role)
	}
	if err != nil {
		// Config was checked by New; go-yamux refusing it is a bug here.
		return nil, fmt.Errorf("yamux: starting session: %w", err)
	}
	return &session{
		ys:       ys,
		conn:     rc,
		cfg:      &m.cfg,
		acceptCh: make(chan *yamux.Stream),
	}, nil
}

// session adapts *yamux.Session to muxer.Session.
type session struct {
	ys   *yamux.Session
	conn *guardedConn
	cfg  *resolved

	// acceptCh carries streams from the accept goroutine (started by the
	// first AcceptStream) to AcceptStream callers; unbuffered, so at most
	// one accepted stream waits outside go-yamux's backlog.
	acceptOnce sync.Once
	acceptCh   chan *yamux.Stream // accept goroutine -> AcceptStream

	errOnce sync.Once
	err     *muxer.Error // why the session closed; set once Done is closed
}

var _ muxer.Session = (*session)(nil)

func (s *session) OpenStream(ctx context.Context) (muxer.Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open stream: %w", context.Cause(ctx))
	}
	ys, err := s.ys.OpenStream(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("open stream: %w", context.Cause(ctx))
		}
		if s.ys.IsClosed() {
			return nil, s.opErr("open stream")
		}
		if errors.Is(err, yamux.ErrStreamsExhausted) {
			return nil, &muxer.Error{Op: "open stream", Kind: muxer.ErrStreamsExhausted}
		}
		// go-yamux fails an open otherwise only when the session closes
		// meanwhile or its memory manager refuses, and it has none.
		return nil, &muxer.Error{Op: "open stream", Kind: muxer.ErrSessionClosed, Err: err}
	}
	return s.wrap(ys), nil
}

func (s *session) AcceptStream(ctx context.Context) (muxer.Stream, error) {
	if s.ys.IsClosed() {
		return nil, s.opErr("accept stream")
	}
	s.acceptOnce.Do(func() { go s.acceptLoop() })
	select {
	case ys := <-s.acceptCh:
		return s.wrap(ys), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("accept stream: %w", context.Cause(ctx))
	case <-s.ys.CloseChan():
		return nil, s.opErr("accept stream")
	}
}

// acceptLoop hands go-yamux's accepted streams to AcceptStream callers
// until the session closes, which ends it.
func (s *session) acceptLoop() {
	for {
		ys, err := s.ys.AcceptStream()
		if err != nil {
			return // only when the session has closed
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
	type result struct {
		rtt time.Duration
		err error
	}
	if s.ys.IsClosed() {
		// go-yamux's Ping may join a ping that completed just before
		// the close and report its success.
		return 0, s.opErr("ping")
	}
	// go-yamux's Ping takes no context; it returns within two ping
	// timeouts or when the session closes, so this goroutine cannot
	// outlive either.
	done := make(chan result, 1)
	go func() {
		rtt, err := s.ys.Ping()
		done <- result{rtt, err}
	}()
	select {
	case r := <-done:
		switch {
		case r.err == nil:
			return r.rtt, nil
		case s.ys.IsClosed():
			return 0, s.opErr("ping")
		case errors.Is(r.err, yamux.ErrTimeout):
			return 0, &muxer.Error{Op: "ping", Kind: os.ErrDeadlineExceeded,
				Err: fmt.Errorf("no answer within the ping timeout %v", s.cfg.pingTimeout)}
		}
		return 0, &muxer.Error{Op: "ping", Kind: muxer.ErrSessionClosed, Err: r.err}
	case <-ctx.Done():
		return 0, fmt.Errorf("ping: %w", context.Cause(ctx))
	}
}

func (s *session) Close() error {
	_ = s.ys.Close() // always nil
	return nil
}

// Shutdown. go-yamux's send queue is first in, first out except for pings
// and pongs, which jump it, so a ping proves nothing about queued data.
// A go-away frame goes through the queue like data: once the guard has
// seen it written to the connection, everything queued before it has been
// written too. go-yamux v5 ends the receiving session as soon as a normal
// go-away arrives (handleGoAway returns ErrRemoteGoAway), after processing
// every frame before it; the peer then closes its connection, and our
// receive loop sees EOF. Closing only then leaves no unread data in our
// receive buffer, so the close is a FIN, not an RST that could destroy
// data still in flight to the peer.
//
// Streams the peer has not accepted when its session ends are dropped by
// go-yamux (its AcceptStream discards them after shutdown), so a stream's
// data is delivered only if the peer accepted the stream; protocols that
// negotiate before writing (multistream-select) always have.
//
// The go-away is sent once no stream is left, and the last check and the
// go-away are one step as far as the peer's frames go: the guard holds
// them back meanwhile, so a stream the peer opens just then is refused by
// go-yamux (it resets streams opened after its go-away) instead of being
// accepted and then cut by the peer's close.
func (s *session) Shutdown(ctx context.Context) error {
	defer s.Close()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.ys.NumStreams() == 0 { // go-yamux announces no stream's end
			if s.ys.IsClosed() {
				return fmt.Errorf("shutdown: before go-away: %w", s.opErr("shutdown"))
			}
			sent, err := s.goAwayIfIdle(ctx)
			if err != nil {
				return err
			}
			if sent {
				break
			}
		}
		select {
		case <-tick.C:
		case <-s.ys.CloseChan():
			return fmt.Errorf("shutdown: waiting for streams: %w", s.opErr("shutdown"))
		case <-ctx.Done():
			return fmt.Errorf("shutdown: %d streams still open: %w", s.ys.NumStreams(), context.Cause(ctx))
		}
	}
	select {
	case <-s.conn.goAwaySent:
	case <-s.ys.CloseChan():
		// The peer may have closed in answer to the go-away, before this
		// select looked: then delivery is complete.
		select {
		case <-s.conn.goAwaySent:
			return nil // the peer closed in answer
		default:
			return fmt.Errorf("shutdown: closed before the go-away was written: %w", s.opErr("shutdown"))
		}
	case <-ctx.Done():
		return fmt.Errorf("shutdown: go-away not written: %w", context.Cause(ctx))
	}
	// Everything is written; wait for the peer to close so that our own
	// close finds nothing unread. Its close after the go-away is the proof
	// of delivery. A peer that does not close on go-away (not go-yamux v5)
	// or is gone gets a short linger, and delivery is unconfirmed.
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

// goAwayIfIdle sends the go-away if no stream is open, with the peer's
// frames held back from the check until go-yamux has marked its go-away
// (GoAway sets the mark before it queues the frame). It reports false,
// nil when a stream is open, or when the receive loop was busy and the
// check should be repeated.
func (s *session) goAwayIfIdle(ctx context.Context) (bool, error) {
	release, err := s.conn.hold(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("shutdown: %w", context.Cause(ctx))
		}
		return false, nil // errReaderBusy: try again
	}
	defer release()
	if s.ys.NumStreams() > 0 {
		return false, nil // one arrived before the hold
	}
	// GoAway blocks only while go-yamux's send queue is full.
	done := make(chan error, 1)
	go func() { done <- s.ys.GoAway() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return false, fmt.Errorf("shutdown: go-away not queued: %w", context.Cause(ctx))
	}
	if err != nil {
		return false, fmt.Errorf("shutdown: sending go-away: %w", s.opErr("shutdown"))
	}
	return true, nil
}

var errUnconfirmed = errors.New("the peer did not close after the go-away; delivery unconfirmed")

// shutdownLinger bounds Shutdown's wait for the peer's close after the
// go-away was written.
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

// closeErr returns the classified reason the session closed. It is meant
// for closed sessions; on an open one it returns a bare ErrSessionClosed
// rather than probe.
func (s *session) closeErr() *muxer.Error {
	if !s.ys.IsClosed() {
		return &muxer.Error{Op: "session", Kind: muxer.ErrSessionClosed}
	}
	s.errOnce.Do(func() {
		// go-yamux exposes its shutdown error only through the
		// operations that fail with it; OpenStream on a closed session
		// returns it before doing anything else.
		_, cause := s.ys.OpenStream(context.Background())
		s.err = closeCause(cause, s.conn.firstErr())
	})
	return s.err
}

// opErr is the error an operation returns because the session has closed.
func (s *session) opErr(op string) error {
	ce := s.closeErr()
	return &muxer.Error{Op: op, Kind: muxer.ErrSessionClosed, Remote: ce.Remote, Code: ce.Code, Err: ce.Err}
}
