package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/multiformats/go-multistream"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/upgrader"
)

// connState is where a connection is in its life in the table.
//
//	active ──▶ draining ──▶ closed
//	   └─────────────────────▲
type connState uint8

const (
	stateActive   connState = iota // serves new streams
	stateDraining                  // lost a duplicate; serves its open streams only
	stateClosed                    // out of the table
)

func (s connState) String() string {
	switch s {
	case stateActive:
		return "active"
	case stateDraining:
		return "draining"
	case stateClosed:
		return "closed"
	}
	return fmt.Sprintf("connState(%d)", uint8(s))
}

// Conn is a connection in the host's table: an upgraded connection plus
// what the host knows of it.
type Conn struct {
	uc     *upgrader.Conn // the upgraded connection; only the host closes it
	h      *Host
	seq    uint64    // this host's sequence number for the connection
	opened time.Time // when it joined the table

	closeOnce sync.Once
	id        identifyState // what the peer's identify said

	// Guarded by h.mu.
	state     connState
	helloDone bool  // the peer's hello arrived
	remote    hello // the peer's hello, valid when helloDone
	legacy    bool  // the peer does not speak the hello protocol
	closing   bool  // closeWith has begun: no new streams
	lastAlive time.Time
	reason    error // why the host closed it
}

// What a Conn tells about itself. Streams are opened with NewStream (or
// Host.NewStream) and closing goes through Close, so that the host's
// table, its events and its close path see every change.

// LocalPeer is this host's peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.uc.LocalPeer() }

// RemotePeer is the authenticated remote peer ID.
func (c *Conn) RemotePeer() peer.ID { return c.uc.RemotePeer() }

// RemotePublicKey is the remote identity key the handshake verified.
func (c *Conn) RemotePublicKey() peer.PubKey { return c.uc.RemotePublicKey() }

// LocalMultiaddr and RemoteMultiaddr are the connection's TCP addresses.
func (c *Conn) LocalMultiaddr() ma.Multiaddr  { return c.uc.LocalMultiaddr() }
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.uc.RemoteMultiaddr() }

// Direction says whether this host dialed the connection or accepted it.
func (c *Conn) Direction() network.Direction { return c.uc.Direction() }

// Role is this side's role after the simopen election.
func (c *Conn) Role() network.Role { return c.uc.Role() }

// Election is the simopen election's record, nil when there was none.
func (c *Conn) Election() *simopen.Election { return c.uc.Election() }

// Security is the security protocol ID, e.g. "/noise".
func (c *Conn) Security() string { return c.uc.Security() }

// Muxer is the stream multiplexer's protocol ID, e.g. "/yamux/1.0.0".
func (c *Conn) Muxer() string { return c.uc.Muxer() }

// MuxerInlined reports whether the muxer was agreed inside the security
// handshake rather than by a multistream-select round of its own.
func (c *Conn) MuxerInlined() bool { return c.uc.MuxerInlined() }

// NewStream opens a stream on this connection and negotiates the first of
// protocols the peer supports, as Host.NewStream does for a peer.
func (c *Conn) NewStream(ctx context.Context, protocols ...string) (*Stream, error) {
	return c.h.openNegotiated(ctx, c, protocols)
}

// NumStreams is the number of streams open on the connection, in either
// direction, the host's own (hello) included.
func (c *Conn) NumStreams() int { return c.uc.Session().NumStreams() }

// Ping measures a round trip of the muxer's own ping (not /ipfs/ping).
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) { return c.uc.Ping(ctx) }

// Done is closed when the connection has closed, for whatever reason.
func (c *Conn) Done() <-chan struct{} { return c.uc.Done() }

// Err is why the connection closed: nil while it is open.
func (c *Conn) Err() error { return c.uc.Err() }

// IsClosed reports whether the connection has closed.
func (c *Conn) IsClosed() bool { return c.uc.IsClosed() }

// Seq is this host's sequence number for the connection: one counter for
// the whole host, increased for every connection that joins its table, so
// numbers only grow and never repeat within an incarnation, even after the
// host forgets a peer.
func (c *Conn) Seq() uint64 { return c.seq }

// RemoteHello returns the peer's incarnation and sequence number for this
// connection, and false until its hello has arrived or when the peer does
// not speak the hello protocol.
func (c *Conn) RemoteHello() (Incarnation, uint64, bool) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return c.remote.Incarnation, c.remote.Seq, c.helloDone
}

// Draining reports whether the connection lost duplicate resolution and
// only finishes its open streams.
func (c *Conn) Draining() bool {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	return c.state == stateDraining
}

// peerState is what the host holds for one peer. Guarded by Host.mu.
type peerState struct {
	id      peer.ID
	conns   []*Conn
	latest  Incarnation
	changed chan struct{} // closed and replaced when conns change
	dial    *dialCall
	addrs   addrBook
	keep    *keeper
}

func (h *Host) peerLocked(p peer.ID) *peerState {
	ps := h.peers[p]
	if ps == nil {
		ps = &peerState{id: p, changed: make(chan struct{})}
		h.peers[p] = ps
	}
	return ps
}

func (ps *peerState) notifyLocked() {
	close(ps.changed)
	ps.changed = make(chan struct{})
}

// bestLocked is the connection new streams go to: an active one, the most
// recently proven alive. A connection whose session has closed but that
// serveConn has not taken out of the table yet is skipped.
func (ps *peerState) bestLocked() *Conn {
	var best *Conn
	for _, c := range ps.conns {
		if c.state == stateActive && !c.closing && !c.IsClosed() && (best == nil || c.lastAlive.After(best.lastAlive)) {
			best = c
		}
	}
	return best
}

// Conns returns the connections to p in the table, active and draining.
func (h *Host) Conns(p peer.ID) []*Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ps := h.peers[p]; ps != nil {
		return slices.Clone(ps.conns)
	}
	return nil
}

// Peers returns the peers with at least one connection.
func (h *Host) Peers() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []peer.ID
	for id, ps := range h.peers {
		if len(ps.conns) > 0 {
			out = append(out, id)
		}
	}
	return out
}

// addConn puts an upgraded connection in the table and starts serving it:
// its inbound streams, identify and the hello exchange.
func (h *Host) addConn(uc *upgrader.Conn) *Conn {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = uc.Close()
		return nil
	}
	ps := h.peerLocked(uc.RemotePeer())
	h.seq++
	now := time.Now()
	c := &Conn{uc: uc, h: h, seq: h.seq, opened: now, lastAlive: now, id: identifyState{done: make(chan struct{})}}
	ps.conns = append(ps.conns, c)
	ps.connectedLocked()
	ps.notifyLocked()
	h.wg.Add(2)
	h.mu.Unlock()

	h.emit(ConnOpened{
		Peer: uc.RemotePeer(), Seq: c.seq, Direction: uc.Direction(), Role: uc.Role(), Election: uc.Election(),
		Security: uc.Security(), Muxer: uc.Muxer(), MuxerInlined: uc.MuxerInlined(),
		Local: uc.LocalMultiaddr(), Remote: uc.RemoteMultiaddr(),
	})
	h.cfg.Logger.Debug("connection opened", "peer", uc.RemotePeer().ShortString(), "seq", c.seq,
		"dir", uc.Direction(), "role", uc.Role())
	go h.serveConn(c)
	go h.greet(c)
	return c
}

// serveConn accepts the connection's inbound streams until it closes, then
// takes it out of the table.
func (h *Host) serveConn(c *Conn) {
	defer h.wg.Done()
	// h.ctx, not a context that never ends: Host.Close must not wait for
	// a session's linger to end this loop (TestCloseDoesNotWaitForLinger).
	for {
		s, err := c.uc.AcceptStream(h.ctx)
		if err != nil {
			break
		}
		h.wg.Add(1)
		go h.handleStream(c, s)
	}
	// A host closing does not wait for its sessions' lingers (see
	// closeWith); c leaves the table as closed by the host.
	select {
	case <-c.Done():
	case <-h.ctx.Done():
	}
	h.removeConn(c)
}

// closeWith closes c, recording why, unless it is closed already. With a
// positive grace it shuts the session down gracefully (muxer
// ShutdownAsync: the streams end, everything written is on its way behind
// the go-away, FIN not RST), waiting at most grace for the streams, and
// returns once the go-away is written: the wait for the peer's close that
// proves delivery goes on in the background, bounded by the muxer's linger
// (2 s), so that a peer that does not close on go-away (js-libp2p) does
// not hold the caller. With 0 it closes at once, for connections known
// dead or stale.
func (c *Conn) closeWith(reason error, grace time.Duration) {
	c.closeOnce.Do(func() {
		c.h.mu.Lock()
		if c.reason == nil {
			c.reason = reason
		}
		c.closing = true
		c.h.mu.Unlock()
		if grace <= 0 {
			_ = c.uc.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = c.uc.Session().ShutdownAsync(ctx)
	})
}

// Close closes the connection gracefully: its streams get
// Config.CloseTimeout to end, and everything written on them before is
// delivered to the peer. It returns once the go-away is written; the
// connection leaves the table (ConnClosed) when the peer closes in return,
// or the muxer's linger (2 s) later if it does not. Done tells when: a
// program that exits right after Close and must know its data arrived
// waits for it.
func (c *Conn) Close() error {
	c.closeWith(errClosedByUser, c.h.cfg.CloseTimeout)
	return nil
}

var errClosedByUser = errors.New("host: closed by the application")

func (h *Host) removeConn(c *Conn) {
	h.mu.Lock()
	ps := h.peers[c.RemotePeer()]
	c.state = stateClosed
	reason := c.reason
	if reason == nil {
		reason = c.Err()
	}
	if ps != nil {
		ps.conns = slices.DeleteFunc(ps.conns, func(x *Conn) bool { return x == c })
		ps.notifyLocked()
		h.gcLocked(ps)
	}
	h.mu.Unlock()
	if errors.Is(reason, muxer.ErrKeepaliveTimeout) {
		h.emit(KeepaliveFailed{Peer: c.RemotePeer(), Seq: c.seq, Lifetime: time.Since(c.opened)})
	}
	h.emit(ConnClosed{Peer: c.RemotePeer(), Seq: c.seq, Reason: reason, Lifetime: time.Since(c.opened)})
	h.cfg.Logger.Debug("connection closed", "peer", c.RemotePeer().ShortString(), "seq", c.seq, "reason", reason)
}

// gcLocked forgets a peer the host holds nothing for.
func (h *Host) gcLocked(ps *peerState) {
	if len(ps.conns) == 0 && ps.dial == nil && ps.keep == nil && ps.addrs.empty() {
		delete(h.peers, ps.id)
	}
}

// sendHello proposes the hello protocol on a new stream and sends this
// side's hello for c, bounded by Config.HelloTimeout. A peer that answers
// "na" does not speak it: c is marked legacy and duplicates are then
// resolved by probing. Any other failure is reported (HelloFailed).
func (h *Host) sendHello(c *Conn) {
	retry := simopen.Backoff{Base: time.Second, Cap: h.cfg.HelloTimeout, Rand: h.jitter}
	for attempt := 0; ; attempt++ {
		if !h.sendHelloOnce(c) || attempt >= h.cfg.HelloRetries {
			return
		}
		t := time.NewTimer(retry.Delay(attempt))
		select {
		case <-t.C:
		case <-c.Done():
			t.Stop()
			return
		case <-h.ctx.Done():
			t.Stop()
			return
		}
		if c.IsClosed() || c.Draining() {
			return
		}
	}
}

// sendHelloOnce is one attempt of sendHello; it reports whether another
// is worth making (the attempt failed, neither refused nor ended by the
// connection's or the host's close).
func (h *Host) sendHelloOnce(c *Conn) (again bool) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.HelloTimeout)
	defer cancel()
	err := func() error {
		s, err := c.uc.OpenStream(ctx)
		if err != nil {
			return err
		}
		defer s.Close()
		b := ctxconn.Bind(ctx, s)
		err = func() error {
			if err := multistream.SelectProtoOrFail(HelloProtocolID, s); err != nil {
				return err
			}
			if _, err := s.Write(hello{Incarnation: h.inc, Seq: c.seq}.marshal()); err != nil {
				return err
			}
			return s.CloseWrite()
		}()
		return b.Release(err)
	}()
	var ns multistream.ErrNotSupported[string]
	switch {
	case err == nil:
	case errors.As(err, &ns):
		h.markLegacy(c)
	default:
		h.helloFailed(c, true, start, fmt.Errorf("sending the hello: %w", err))
		return !c.IsClosed() && h.ctx.Err() == nil
	}
	return false
}

// serveHello is the hello protocol's handler: the peer's hello must arrive
// within Config.HelloTimeout of the stream's acceptance.
func (h *Host) serveHello(s *Stream) {
	start := time.Now()
	_ = s.SetReadDeadline(start.Add(h.cfg.HelloTimeout))
	m, err := readHello(s)
	_ = s.Close()
	if err != nil {
		h.helloFailed(s.Conn(), false, start, fmt.Errorf("reading the hello: %w", err))
		return
	}
	h.helloReceived(s.Conn(), m)
}

// helloFailed reports a failed half of the hello exchange on c, unless c
// or the host closed under it (ConnClosed says why). A failure at the
// HelloTimeout wraps ErrHelloTimeout.
func (h *Host) helloFailed(c *Conn, sending bool, start time.Time, err error) {
	elapsed := time.Since(start)
	if c.IsClosed() || h.ctx.Err() != nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w (%v): %w", ErrHelloTimeout, h.cfg.HelloTimeout, err)
	}
	h.emit(HelloFailed{Peer: c.RemotePeer(), Seq: c.seq, Sending: sending, Err: err, Elapsed: elapsed})
	h.cfg.Logger.Debug("hello failed", "peer", c.RemotePeer().ShortString(), "seq", c.seq,
		"sending", sending, "elapsed", elapsed, "err", err)
}

// helloReceived records the peer's hello for c and resolves duplicates.
func (h *Host) helloReceived(c *Conn, m hello) {
	h.mu.Lock()
	if c.state == stateClosed || c.helloDone {
		h.mu.Unlock()
		return
	}
	c.helloDone, c.remote, c.lastAlive = true, m, time.Now()
	ps := h.peers[c.RemotePeer()]
	ps.latest = m.Incarnation
	if h.cfg.KeepAll {
		h.mu.Unlock()
		return
	}
	cands := make([]candidate, len(ps.conns))
	for i, x := range ps.conns {
		cands[i] = candidate{helloDone: x.helloDone && x.state != stateClosed, remote: x.remote, localSeq: x.seq}
	}
	v := resolve(h.id, c.RemotePeer(), ps.latest, cands)
	var stale, losers []*Conn
	var survivorSeq uint64
	if v.survivor >= 0 {
		survivorSeq = ps.conns[v.survivor].seq
	}
	for _, i := range v.stale {
		stale = append(stale, ps.conns[i])
	}
	for _, i := range v.losers {
		if x := ps.conns[i]; x.state == stateActive {
			// The reason is set now, not when the drain begins: the peer's
			// go-away may close the session first.
			x.state, x.reason = stateDraining, ErrDuplicate
			losers = append(losers, x)
		}
	}
	if len(stale)+len(losers) > 0 {
		ps.notifyLocked()
	}
	h.mu.Unlock()

	for _, x := range stale {
		h.emit(DuplicateResolved{Peer: x.RemotePeer(), Rule: ResolvedByIncarnation, SurvivorSeq: survivorSeq, ClosedSeq: x.seq, Immediate: true})
		x.closeWith(ErrStaleIncarnation, 0)
	}
	for _, x := range losers {
		h.emit(DuplicateResolved{Peer: x.RemotePeer(), Rule: ResolvedBySequence, SurvivorSeq: survivorSeq, ClosedSeq: x.seq})
		h.drain(x, ErrDuplicate)
	}
}

// drain closes c gracefully once its streams have ended, waiting at most
// the grace period. Streams the peer opens on c before it has decided too
// keep c open until they end; a stream cut by the close before its
// protocol was agreed is retried by the peer's NewStream on the survivor.
func (h *Host) drain(c *Conn, reason error) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		c.closeWith(reason, h.cfg.DuplicateGrace)
	}()
}

// markLegacy records that the peer does not speak the hello protocol and,
// if it now has several connections, resolves them by probing: each older
// connection is pinged with a short timeout; one that does not answer is
// dead and closed at once. Of the live ones (those that answered and the
// newest) the survivor is legacySurvivor's pick and the others drain.
func (h *Host) markLegacy(c *Conn) {
	h.mu.Lock()
	c.legacy = true
	ps := h.peers[c.RemotePeer()]
	if h.cfg.KeepAll || ps == nil {
		h.mu.Unlock()
		return
	}
	var group []*Conn
	for _, x := range ps.conns {
		if x.legacy && x.state == stateActive {
			group = append(group, x)
		}
	}
	h.mu.Unlock()
	if len(group) < 2 {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.probeAndResolve(group)
	}()
}

// legacySurvivor picks, among active connections to a legacy peer in the
// order they were opened, the one to keep: the one with the most open
// streams, the newest of those tied. The peer does not know a decision was
// made and keeps choosing its own connection for new streams until the
// loser closes; go-libp2p picks exactly this way (its swarm's isBetterConn:
// most streams, then the last connection). Keeping its choice means it
// opens few streams on the loser, so the loser drains quickly and few
// streams cross its GoAway. The oldest would be the wrong pick: right after
// a second connection comes up both have as many streams, and go-libp2p
// moves to the newest.
func legacySurvivor(live []*Conn) int {
	best, bestN := 0, -1
	for i, c := range live {
		if n := c.uc.Session().NumStreams(); n >= bestN {
			best, bestN = i, n
		}
	}
	return best
}

func (h *Host) probeAndResolve(group []*Conn) {
	newest := group[len(group)-1]
	var alive []*Conn
	for _, x := range group[:len(group)-1] {
		ctx, cancel := context.WithTimeout(h.ctx, h.cfg.ProbeTimeout)
		_, err := x.Ping(ctx)
		cancel()
		if err != nil {
			h.emit(DuplicateResolved{Peer: x.RemotePeer(), Rule: ResolvedByProbe, SurvivorSeq: newest.seq, ClosedSeq: x.seq, Immediate: true})
			x.closeWith(fmt.Errorf("%w: %w", ErrProbeFailed, err), 0)
			continue
		}
		h.mu.Lock()
		x.lastAlive = time.Now()
		h.mu.Unlock()
		alive = append(alive, x)
	}
	h.mu.Lock()
	alive = slices.DeleteFunc(append(alive, newest), func(x *Conn) bool {
		return x.state != stateActive || x.uc.IsClosed()
	})
	if len(alive) < 2 {
		h.mu.Unlock()
		return
	}
	si := legacySurvivor(alive)
	h.mu.Unlock()
	survivor := alive[si]
	for i, x := range alive {
		if i == si {
			continue
		}
		h.mu.Lock()
		if x.state != stateActive {
			h.mu.Unlock()
			continue
		}
		x.state, x.reason = stateDraining, ErrDuplicate
		if ps := h.peers[x.RemotePeer()]; ps != nil {
			ps.notifyLocked()
		}
		h.mu.Unlock()
		h.emit(DuplicateResolved{Peer: x.RemotePeer(), Rule: ResolvedByProbe, SurvivorSeq: survivor.seq, ClosedSeq: x.seq})
		h.drain(x, ErrDuplicate)
	}
}
