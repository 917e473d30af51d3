package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// ErrBackoff: every address of the peer is backing off after failed dials.
// The *DialError's Retry says when the first one may be dialed again;
// ForceDial ignores backoff.
var ErrBackoff = errors.New("host: all addresses backing off")

// DialError is the error of a failed Connect: the peer, the error of each
// address tried, and when the first address leaves its backoff.
type DialError struct {
	Peer   peer.ID
	Errs   []AddrError
	Retry  time.Time // zero if no address is backing off
	Reason error     // ErrBackoff, ErrNoConnection, ErrHostClosed or a context's cause; nil if Errs say it all
}

// AddrError is the failure of one address.
type AddrError struct {
	Addr ma.Multiaddr
	Err  error
}

func (e *DialError) Error() string {
	msg := "host: dialing " + e.Peer.ShortString()
	if e.Reason != nil {
		msg += ": " + e.Reason.Error()
		if !e.Retry.IsZero() {
			msg += fmt.Sprintf(" (next retry in %v)", time.Until(e.Retry).Round(time.Millisecond))
		}
	}
	for _, ae := range e.Errs {
		msg += fmt.Sprintf("; %v: %s", ae.Addr, addrErrorText(ae.Err))
	}
	return msg
}

// addrErrorText is an address's error as the DialError line shows it:
// the line has named the peer and the address already, so a TCP or
// upgrade error is told by its stage and cause without repeating them.
func addrErrorText(err error) string {
	switch e := err.(type) {
	case *tcp.DialError:
		cause := e.Err
		if oe, ok := cause.(*net.OpError); ok {
			cause = oe.Err // "dial tcp4 ADDR: " repeats the address
		}
		if se, ok := cause.(*os.SyscallError); ok {
			cause = se.Err // "connect: " repeats the stage
		}
		return fmt.Sprintf("tcp connect: %v", cause)
	case *upgrader.Error:
		return fmt.Sprintf("%v stage: %v", e.Stage, e.Err)
	}
	return err.Error()
}

// Unwrap returns the reason and each address's error, for errors.Is/As.
func (e *DialError) Unwrap() []error {
	var out []error
	if e.Reason != nil {
		out = append(out, e.Reason)
	}
	for _, ae := range e.Errs {
		out = append(out, ae.Err)
	}
	return out
}

// addrBook is what a host knows of a peer's addresses: the addresses and
// their backoff state. Guarded by Host.mu.
type addrBook struct {
	addrs   []ma.Multiaddr
	backoff map[string]*AddrBackoff
}

// AddrBackoff is the dial backoff state of one address.
type AddrBackoff struct {
	Addr     ma.Multiaddr
	Failures int       // consecutive failures
	Until    time.Time // no dial before this (unless forced)
	LastErr  error
	Failed   time.Time // when the last failure happened
	// Elsewhere: the address last failed in a dial that another of the
	// peer's addresses won, so it fails while the peer is up. Its
	// failures outlast the peer's connections; those of an address
	// without it are forgotten when a connection to the peer opens.
	Elsewhere bool
}

func (b *addrBook) empty() bool { return len(b.addrs) == 0 && len(b.backoff) == 0 }

func (b *addrBook) add(addrs []ma.Multiaddr) {
	for _, a := range addrs {
		if !slicesContainsAddr(b.addrs, a) {
			b.addrs = append(b.addrs, a)
		}
	}
}

func slicesContainsAddr(list []ma.Multiaddr, a ma.Multiaddr) bool {
	for _, x := range list {
		if x.Equal(a) {
			return true
		}
	}
	return false
}

// Backoff returns the backoff state of p's addresses that have failed.
func (h *Host) Backoff(p peer.ID) []AddrBackoff {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := h.peers[p]
	if ps == nil {
		return nil
	}
	var out []AddrBackoff
	for _, a := range ps.addrs.addrs {
		if b := ps.addrs.backoff[a.String()]; b != nil {
			out = append(out, *b)
		}
	}
	return out
}

// dialCall is a dial in flight to one peer, shared by every Connect for
// that peer.
type dialCall struct {
	done chan struct{} // closed when conn/err are set
	conn *Conn
	err  error
	// waiters counts the Connect calls waiting for the result; the last
	// one to give up cancels the dial with its context's cause and waits
	// for it, so that its error names each address and the stage it was
	// in. Guarded by Host.mu.
	waiters int
	cancel  context.CancelCauseFunc
}

// Connect returns a live connection to ai.ID: an existing one, the one a
// dial already in flight produces, or a new dial of ai.Addrs (added to the
// addresses the host knows for the peer). Addresses backing off after
// failures are skipped; if all are, Connect fails at once with ErrBackoff.
//
// ctx bounds the caller's wait; the dial itself is bounded by
// Config.DialTimeout and continues for the other callers if this one
// gives up. When the last caller gives up, the dial is cancelled with that
// caller's context cause, and its *DialError names each address with the
// stage it was in; cancelled attempts do not count toward backoff.
//
// The connection returned may later lose duplicate resolution and drain;
// use NewStream(peer) rather than holding on to a connection.
func (h *Host) Connect(ctx context.Context, ai peer.AddrInfo) (*Conn, error) {
	return h.connect(ctx, ai, false)
}

// ForceDial is Connect ignoring address backoff.
func (h *Host) ForceDial(ctx context.Context, ai peer.AddrInfo) (*Conn, error) {
	return h.connect(ctx, ai, true)
}

func (h *Host) connect(ctx context.Context, ai peer.AddrInfo, force bool) (*Conn, error) {
	if ai.ID == h.id {
		return nil, errors.New("host: cannot dial self")
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, &DialError{Peer: ai.ID, Reason: ErrHostClosed}
	}
	ps := h.peerLocked(ai.ID)
	ps.addrs.add(ai.Addrs)
	if c := ps.bestLocked(); c != nil {
		h.mu.Unlock()
		return c, nil
	}
	call := ps.dial
	if call == nil {
		dctx, cancel := context.WithCancelCause(h.ctx)
		call = &dialCall{done: make(chan struct{}), cancel: cancel}
		ps.dial = call
		h.wg.Add(1)
		go h.runDial(dctx, ps, call, force)
	}
	call.waiters++
	h.mu.Unlock()
	select {
	case <-call.done:
		return call.conn, call.err
	case <-ctx.Done():
	}
	h.mu.Lock()
	call.waiters--
	last := call.waiters == 0
	h.mu.Unlock()
	if !last { // the dial goes on for the others
		return nil, &DialError{Peer: ai.ID, Reason: context.Cause(ctx)}
	}
	call.cancel(context.Cause(ctx))
	<-call.done // prompt: cancelling unblocks each attempt's I/O
	return call.conn, call.err
}

func (h *Host) runDial(ctx context.Context, ps *peerState, call *dialCall, force bool) {
	defer h.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, h.cfg.DialTimeout)
	defer cancel()
	defer call.cancel(nil)
	call.conn, call.err = h.dialPeer(ctx, ps, force)
	h.mu.Lock()
	ps.dial = nil
	h.gcLocked(ps)
	h.mu.Unlock()
	close(call.done)
}

type dialResult struct {
	addr    ma.Multiaddr
	started time.Time // when the attempt on addr began
	conn    *upgrader.Conn
	err     error
}

// dialPeer dials the usable addresses of ps with a stagger; the first
// success wins and the others are cancelled and closed.
func (h *Host) dialPeer(ctx context.Context, ps *peerState, force bool) (*Conn, error) {
	now := time.Now()
	h.mu.Lock()
	var usable []ma.Multiaddr
	var retry time.Time
	for _, a := range ps.addrs.addrs {
		b := ps.addrs.backoff[a.String()]
		if force || b == nil || !now.Before(b.Until) {
			usable = append(usable, a)
		} else if retry.IsZero() || b.Until.Before(retry) {
			retry = b.Until
		}
	}
	h.mu.Unlock()
	if len(usable) == 0 {
		if !retry.IsZero() {
			return nil, &DialError{Peer: ps.id, Reason: ErrBackoff, Retry: retry}
		}
		return nil, &DialError{Peer: ps.id, Reason: ErrNoConnection}
	}

	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan dialResult, len(usable))
	next, pending := 0, 0
	launch := func() {
		a := usable[next]
		next++
		pending++
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			started := time.Now()
			c, err := h.dialAddr(dctx, ps.id, a)
			results <- dialResult{a, started, c, err}
		}()
	}
	launch()
	stagger := time.NewTimer(h.cfg.DialStagger)
	defer stagger.Stop()

	var winner *upgrader.Conn
	var errs []AddrError
	var failed []ma.Multiaddr // the addresses whose failures count
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			switch {
			case r.err == nil && winner == nil:
				winner = r.conn
				h.dialSucceeded(ps, r.addr)
				cancel()
			case r.err == nil:
				_ = r.conn.Close() // a slower address also made it: first wins
			case winner == nil:
				// A cancelled attempt's error still says where it was;
				// only a failure on its own counts for backoff.
				errs = append(errs, AddrError{r.addr, r.err})
				if dctx.Err() == nil {
					h.dialFailed(ps, r.addr, r.err, r.started)
					failed = append(failed, r.addr)
					if next < len(usable) {
						launch()
						stagger.Reset(h.cfg.DialStagger)
					}
				}
			}
		case <-stagger.C:
			if winner == nil && next < len(usable) {
				launch()
				stagger.Reset(h.cfg.DialStagger)
			}
		}
	}
	if winner != nil {
		h.failedElsewhere(ps, failed)
		if c := h.addConn(winner); c != nil {
			return c, nil
		}
		return nil, &DialError{Peer: ps.id, Reason: ErrHostClosed}
	}
	de := &DialError{Peer: ps.id, Errs: errs, Retry: h.nextRetry(ps)}
	if ctx.Err() != nil {
		de.Reason = context.Cause(ctx)
	}
	return nil, de
}

// dialAddr dials one address and upgrades the connection, redialing after
// a jittered delay when the election tied or the dial crossed one of a
// peer without simopen (Config.TieRetries each), or the peer reset the
// connection before security began (Config.ResetRetries).
func (h *Host) dialAddr(ctx context.Context, p peer.ID, a ma.Multiaddr) (*upgrader.Conn, error) {
	tie := simopen.Backoff{Base: 50 * time.Millisecond, Cap: time.Second, Rand: h.jitter}
	reset := simopen.Backoff{Base: 100 * time.Millisecond, Cap: 2 * time.Second, Rand: h.jitter}
	ties, crossings, resets := 0, 0, 0
	for {
		raw, err := h.dialRaw(ctx, a)
		if err != nil {
			return nil, err
		}
		c, err := h.upgradeOutbound(ctx, raw, p)
		var delay time.Duration
		switch {
		case err == nil:
			return c, nil
		case errors.Is(err, upgrader.ErrSimopenTie) && ties < h.cfg.TieRetries:
			delay = tie.Delay(ties)
			ties++
		case errors.Is(err, upgrader.ErrPeerWithoutSimopen) && crossings < h.cfg.TieRetries:
			// The peer's crossing dial fails too; ours, redialed once
			// the pair's sockets are gone, is an ordinary dial.
			delay = tie.Delay(crossings)
			crossings++
		case resetBeforeSecurity(err) && resets < h.cfg.ResetRetries:
			delay = reset.Delay(resets)
			resets++
		default:
			return nil, err
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
	}
}

// resetBeforeSecurity reports whether an upgrade failed because the other
// end reset or closed the connection during the first stage (the election
// and security protocol selection), before it had answered any handshake:
// nothing of the application's had been sent.
func resetBeforeSecurity(err error) bool {
	var ue *upgrader.Error
	if !errors.As(err, &ue) || ue.Stage != upgrader.StageSimopen {
		return false
	}
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// dialFailed counts a failure of the attempt on a that began at started.
// The backoff delay runs from the attempt's start, not its end: it spaces
// the starts of the attempts on an address. A quick failure (refused,
// unreachable, reset) blocks the address for the delay; an attempt that
// took longer than its delay — a connect that the kernel retransmitted
// SYNs for until the connect timeout, on a path that silently drops them —
// is followed at once, so that while a peer has been unreachable for a
// short while a SYN is always in flight and a returning path is found
// within the kernel's SYN retransmission interval, not after that
// interval, the connect timeout's remainder and a backoff delay.
func (h *Host) dialFailed(ps *peerState, a ma.Multiaddr, err error, started time.Time) {
	h.mu.Lock()
	if ps.addrs.backoff == nil {
		ps.addrs.backoff = map[string]*AddrBackoff{}
	}
	b := ps.addrs.backoff[a.String()]
	if b == nil {
		b = &AddrBackoff{Addr: a}
		ps.addrs.backoff[a.String()] = b
	}
	b.Failures++
	b.LastErr = err
	b.Failed = time.Now()
	b.Until = started.Add(h.backoffDelay(b.Failures))
	if b.Until.Before(b.Failed) {
		b.Until = b.Failed
	}
	ev := BackoffScheduled{Peer: ps.id, Addr: a, Failures: b.Failures, Until: b.Until, Err: err}
	h.mu.Unlock()
	h.emit(ev)
}

// backoffDelay is the delay after the n-th consecutive failure: uniform in
// [0, min(cap, base·2^(n-1))), full jitter.
func (h *Host) backoffDelay(n int) time.Duration {
	return simopen.Backoff{Base: h.cfg.BackoffBase, Cap: h.cfg.BackoffCap, Rand: h.jitter}.Delay(n - 1)
}

// nextRetry is when the first of ps's addresses leaves its backoff.
func (h *Host) nextRetry(ps *peerState) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var t time.Time
	for _, b := range ps.addrs.backoff {
		if t.IsZero() || b.Until.Before(t) {
			t = b.Until
		}
	}
	return t
}

func (h *Host) dialSucceeded(ps *peerState, a ma.Multiaddr) {
	h.mu.Lock()
	delete(ps.addrs.backoff, a.String())
	h.mu.Unlock()
}

// failedElsewhere marks the addresses that failed in a dial another
// address won (AddrBackoff.Elsewhere).
func (h *Host) failedElsewhere(ps *peerState, failed []ma.Multiaddr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range failed {
		if b := ps.addrs.backoff[a.String()]; b != nil {
			b.Elsewhere = true
		}
	}
}

// connectedLocked forgets the failures of ps's addresses when a connection
// to the peer opens, in either direction: they were counted while the peer
// could not be reached, an outage this connection ends, and carried over
// they would make the next outage start at a longer delay, and every later
// one longer still. Addresses that failed while the peer answered at
// another (Elsewhere) keep backing off.
func (ps *peerState) connectedLocked() {
	for k, b := range ps.addrs.backoff {
		if !b.Elsewhere {
			delete(ps.addrs.backoff, k)
		}
	}
}
