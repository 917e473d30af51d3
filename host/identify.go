package host

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/transport/tcp"
)

// DefaultProtocolVersion is the identify protocolVersion a host sends when
// Config.ProtocolVersion is empty: go-libp2p's and js-libp2p's default.
const DefaultProtocolVersion = "ipfs/0.1.0"

// ErrIdentifyPending: the peer's identify response has not arrived yet.
var ErrIdentifyPending = errors.New("host: identify not finished")

// maxPushes bounds the identify pushes in flight at once.
const maxPushes = 32

// defaultAgentVersion is "concord/<module version>", or "concord/devel"
// when the binary does not record the version.
func defaultAgentVersion() string {
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		mods := append([]*debug.Module{&bi.Main}, bi.Deps...)
		for _, m := range mods {
			if m.Path == "github.com/concordp2p/concord" && m.Version != "" && m.Version != "(devel)" {
				v = m.Version
			}
		}
	}
	return "concord/" + v
}

// identifyState is what a Conn holds of the peer's identify. Guarded by
// Host.mu, except done, which is closed once.
type identifyState struct {
	done     chan struct{} // closed once the first response was handled and reported
	finished bool          // info and err are the first response's
	info     identify.Info
	err      error
}

// Identify returns what the peer said about itself with identify: its
// response to this host's request, updated by its pushes. The error is
// ErrIdentifyPending until the response has been handled (see
// Identified), or why identify failed: the peer does not serve it
// (ErrProtocolNotSupported), its key or signed record is not its own
// (identify.ErrKeyMismatch, identify.ErrBadRecord), a malformed or
// oversized message (identify.ErrMalformed), Config.IdentifyTimeout.
// The connection stays up when identify fails.
func (c *Conn) Identify() (identify.Info, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	if !c.id.finished {
		return identify.Info{}, ErrIdentifyPending
	}
	return c.id.info, c.id.err
}

// Identified is closed when the peer's identify response has been handled,
// successfully or not, and its PeerIdentified or IdentifyFailed event
// delivered.
func (c *Conn) Identified() <-chan struct{} { return c.id.done }

// identifyMessage is this host's Identify message for a connection whose
// remote address is observed.
func (h *Host) identifyMessage(observed ma.Multiaddr) identify.Message {
	h.hmu.RLock()
	protos := make([]string, 0, len(h.handlers))
	for p := range h.handlers {
		protos = append(protos, p)
	}
	h.hmu.RUnlock()
	slices.Sort(protos)
	h.idmu.Lock()
	addrs, rec := h.idAddrs, h.idRecord
	h.idmu.Unlock()
	return identify.Message{
		ProtocolVersion: h.cfg.ProtocolVersion, AgentVersion: h.cfg.AgentVersion,
		PublicKey: h.pubKey, ListenAddrs: addrs, ObservedAddr: observed,
		Protocols: protos, SignedPeerRecord: rec,
		Has: identify.HasProtocolVersion | identify.HasAgentVersion | identify.HasPublicKey |
			identify.HasListenAddrs | identify.HasObservedAddr | identify.HasProtocols,
	}
}

// sealRecord signs the host's current listen addresses into a peer record
// for identify. Called once the listeners are up.
func (h *Host) sealRecord() error {
	addrs := tcp.ExpandUnspecified(h.Addrs())
	rec, err := identify.SealRecord(h.cfg.Identity, identify.PeerRecord{PeerID: h.id, Seq: identify.RecordSeq(), Addrs: addrs})
	if err != nil {
		return err
	}
	h.idmu.Lock()
	h.idAddrs, h.idRecord = addrs, rec
	h.idmu.Unlock()
	return nil
}

// serveIdentify answers a peer's identify request: one message, then close.
func (h *Host) serveIdentify(s *Stream) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.IdentifyTimeout)
	defer cancel()
	b := ctxconn.Bind(ctx, s)
	err := identify.Write(s, h.identifyMessage(s.Conn().RemoteMultiaddr()))
	b.Stop()
	if err != nil {
		_ = s.Reset()
		h.cfg.Logger.Debug("identify not answered", "peer", s.RemotePeer().ShortString(), "err", err)
		return
	}
	_ = s.Close()
}

// requestIdentify asks the peer of c for its Identify message and checks
// it, bounded by Config.IdentifyTimeout.
func (h *Host) requestIdentify(c *Conn) (identify.Info, error) {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.IdentifyTimeout)
	defer cancel()
	s, err := h.openNegotiated(ctx, c, []string{identify.ID})
	if err != nil {
		return identify.Info{}, err
	}
	_ = s.CloseWrite() // a request is the stream's opening alone
	b := ctxconn.Bind(ctx, s)
	m, err := identify.Read(s)
	if err = b.Release(err); err != nil {
		_ = s.Reset()
		return identify.Info{}, fmt.Errorf("host: identify of %s: %w", c.RemotePeer().ShortString(), err)
	}
	_ = s.Close()
	return identify.Check(m, c.RemotePeer())
}

// identified records the outcome of c's identify request and reports it.
func (h *Host) identified(c *Conn, info identify.Info, err error) {
	h.mu.Lock()
	c.id.info, c.id.err, c.id.finished = info, err, true
	h.mu.Unlock()
	defer close(c.id.done)
	if err != nil {
		h.emit(IdentifyFailed{Peer: c.RemotePeer(), Seq: c.seq, Err: err})
		h.cfg.Logger.Debug("identify failed", "peer", c.RemotePeer().ShortString(), "seq", c.seq, "err", err)
		return
	}
	h.emit(PeerIdentified{Peer: c.RemotePeer(), Seq: c.seq, Info: info})
	h.cfg.Logger.Debug("peer identified", "peer", c.RemotePeer().ShortString(), "seq", c.seq,
		"agent", info.AgentVersion, "protocols", len(info.Protocols), "addrs", len(info.ListenAddrs))
}

// greet runs on every new connection: identify first, then the hello if
// the peer lists it. A peer whose identify did not say (it does not serve
// identify, or identify failed) is offered the hello anyway, as before
// identify existed; one whose identify omits it is marked legacy without a
// stream it would only refuse.
func (h *Host) greet(c *Conn) {
	defer h.wg.Done()
	info, err := h.requestIdentify(c)
	h.identified(c, info, err)
	if err == nil && !info.Supports(HelloProtocolID) {
		h.markLegacy(c)
		return
	}
	h.sendHello(c)
}

// servePush applies a peer's identify push to the connection it came on.
func (h *Host) servePush(s *Stream) {
	c := s.Conn()
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.IdentifyTimeout)
	defer cancel()
	b := ctxconn.Bind(ctx, s)
	m, err := identify.Read(s)
	if err = b.Release(err); err != nil {
		_ = s.Reset()
		h.cfg.Logger.Debug("bad identify push", "peer", c.RemotePeer().ShortString(), "err", err)
		return
	}
	_ = s.Close()
	checked, err := identify.Check(m, c.RemotePeer())
	if err != nil {
		h.cfg.Logger.Debug("identify push refused", "peer", c.RemotePeer().ShortString(), "err", err)
		return
	}
	h.mu.Lock()
	info := c.id.info.Update(m, checked)
	c.id.info = info
	h.mu.Unlock()
	h.emit(PeerIdentified{Peer: c.RemotePeer(), Seq: c.seq, Info: info, Push: true})
}

// schedulePush asks the pusher to send this host's Identify message to
// every peer that serves push; calls in a burst coalesce into one push.
func (h *Host) schedulePush() {
	select {
	case h.pushCh <- struct{}{}:
	default:
	}
}

// runPusher sends the pushes schedulePush asks for until the host closes.
func (h *Host) runPusher() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.pushCh:
		}
		h.pushAll()
	}
}

func (h *Host) pushAll() {
	var targets []*Conn
	h.mu.Lock()
	for _, ps := range h.peers {
		for _, c := range ps.conns {
			if c.state != stateClosed && c.id.finished && c.id.err == nil && c.id.info.Supports(identify.PushID) {
				targets = append(targets, c)
			}
		}
	}
	h.mu.Unlock()
	sem := make(chan struct{}, maxPushes)
	var wg sync.WaitGroup
	for _, c := range targets {
		select {
		case sem <- struct{}{}:
		case <-h.ctx.Done():
			wg.Wait()
			return
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := h.push(c); err != nil {
				h.cfg.Logger.Debug("identify push failed", "peer", c.RemotePeer().ShortString(), "err", err)
			}
		})
	}
	wg.Wait()
}

func (h *Host) push(c *Conn) error {
	ctx, cancel := context.WithTimeout(h.ctx, h.cfg.IdentifyTimeout)
	defer cancel()
	s, err := h.openNegotiated(ctx, c, []string{identify.PushID})
	if err != nil {
		return err
	}
	b := ctxconn.Bind(ctx, s)
	err = identify.Write(s, h.identifyMessage(c.RemoteMultiaddr()))
	if err == nil {
		err = s.CloseWrite()
	}
	if err = b.Release(err); err != nil {
		_ = s.Reset()
		return err
	}
	return s.Close()
}
