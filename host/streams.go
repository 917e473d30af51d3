package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/peer"
)

// ErrProtocolNotSupported: the peer answered "na" to every protocol
// proposed for a stream.
var ErrProtocolNotSupported = errors.New("host: protocol not supported by peer")

// StreamHandler serves one inbound stream of a protocol. It owns the
// stream and must close it. Handlers run on their own goroutine; a handler
// still running when the host closes sees its stream fail.
type StreamHandler func(s *Stream)

// Stream is a stream whose protocol has been negotiated.
type Stream struct {
	muxer.Stream
	conn     *Conn
	protocol string
}

// Protocol is the negotiated protocol ID.
func (s *Stream) Protocol() string { return s.protocol }

// Conn is the connection the stream belongs to.
func (s *Stream) Conn() *Conn { return s.conn }

// RemotePeer is the peer at the other end.
func (s *Stream) RemotePeer() peer.ID { return s.conn.RemotePeer() }

// SetStreamHandler serves protocol with handler, replacing any handler it
// had. Streams for protocols without a handler are answered "na".
//
// HelloProtocolID, identify.ID and identify.PushID are the host's own and
// panic. Peers that serve identify push learn of the change.
func (h *Host) SetStreamHandler(protocol string, handler StreamHandler) {
	if reserved(protocol) {
		panic("host: " + protocol + " is reserved for the host")
	}
	h.setHandler(protocol, handler)
	h.schedulePush()
}

func reserved(protocol string) bool {
	return protocol == HelloProtocolID || protocol == identify.ID || protocol == identify.PushID
}

func (h *Host) setHandler(protocol string, handler StreamHandler) {
	h.hmu.Lock()
	h.handlers[protocol] = handler
	h.hmu.Unlock()
	h.msel.AddHandler(protocol, nil)
}

// RemoveStreamHandler stops serving protocol.
func (h *Host) RemoveStreamHandler(protocol string) {
	if reserved(protocol) {
		return
	}
	h.hmu.Lock()
	delete(h.handlers, protocol)
	h.hmu.Unlock()
	h.msel.RemoveHandler(protocol)
	h.schedulePush()
}

// handleStream negotiates an inbound stream's protocol, bounded by
// NegotiationTimeout, and runs its handler.
func (h *Host) handleStream(c *Conn, s muxer.Stream) {
	defer h.wg.Done()
	_ = s.SetDeadline(time.Now().Add(h.cfg.NegotiationTimeout))
	proto, _, err := h.msel.Negotiate(s)
	if err != nil {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Time{})
	h.hmu.RLock()
	handler := h.handlers[proto]
	h.hmu.RUnlock()
	if handler == nil { // removed while negotiating
		_ = s.Reset()
		return
	}
	handler(&Stream{Stream: s, conn: c, protocol: proto})
}

// NewStream opens a stream to p and negotiates the first of protocols the
// peer supports, bounded by ctx and NegotiationTimeout. It uses the
// connection most recently proven alive, and dials p (with the addresses
// given to Connect or KeepConnected) if there is none.
//
// A stream that fails before its protocol is agreed, because its
// connection was closing (a duplicate that lost, a peer's GoAway), is
// opened again on the connection that replaced it: no byte of the
// application has been sent yet, so the retry is safe. At most
// maxStreamRetries retries.
func (h *Host) NewStream(ctx context.Context, p peer.ID, protocols ...string) (*Stream, error) {
	if len(protocols) == 0 {
		return nil, errors.New("host: NewStream needs at least one protocol")
	}
	for attempt := 0; ; attempt++ {
		c, err := h.connFor(ctx, p)
		if err != nil {
			return nil, err
		}
		s, err := h.openNegotiated(ctx, c, protocols)
		if err == nil {
			return s, nil
		}
		if attempt >= maxStreamRetries || !connGoingAway(c, err) || ctx.Err() != nil {
			return nil, err
		}
	}
}

const maxStreamRetries = 2

// connGoingAway reports whether err came from c closing or refusing new
// streams, rather than from the peer or the protocol.
func connGoingAway(c *Conn, err error) bool {
	return c.IsClosed() || c.Draining() || errors.Is(err, muxer.ErrSessionClosed) ||
		errors.Is(err, muxer.ErrStreamReset) || errors.Is(err, muxer.ErrGoAway)
}

func (h *Host) openNegotiated(ctx context.Context, c *Conn, protocols []string) (*Stream, error) {
	p := c.RemotePeer()
	s, err := c.uc.OpenStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("host: opening stream to %s: %w", p.ShortString(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.NegotiationTimeout)
	defer cancel()
	b := ctxconn.Bind(ctx, s)
	proto, err := multistream.SelectOneOf(protocols, s)
	ended := b.Stop()
	if err != nil {
		_ = s.Reset()
		var ns multistream.ErrNotSupported[string]
		switch {
		case errors.As(err, &ns):
			return nil, fmt.Errorf("%w: %q", ErrProtocolNotSupported, protocols)
		case ended || ctx.Err() != nil:
			return nil, fmt.Errorf("host: negotiating %q with %s: %w", protocols, p.ShortString(), context.Cause(ctx))
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("host: negotiating %q with %s: stream closed: %w", protocols, p.ShortString(), err)
		}
		return nil, fmt.Errorf("host: negotiating %q with %s: %w", protocols, p.ShortString(), err)
	}
	return &Stream{Stream: s, conn: c, protocol: proto}, nil
}

// connFor returns the connection new streams to p use, dialing if needed.
func (h *Host) connFor(ctx context.Context, p peer.ID) (*Conn, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrHostClosed
	}
	var c *Conn
	var addrs bool
	if ps := h.peers[p]; ps != nil {
		c = ps.bestLocked()
		addrs = !ps.addrs.empty()
	}
	h.mu.Unlock()
	if c != nil {
		return c, nil
	}
	if !addrs {
		return nil, fmt.Errorf("%w %s", ErrNoConnection, p.ShortString())
	}
	return h.Connect(ctx, peer.AddrInfo{ID: p})
}
