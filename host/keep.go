package host

import (
	"context"
	"errors"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
)

// keeper keeps a connection to one peer up (Foolscap's Reconnector).
type keeper struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// KeepConnected keeps a connection to p up until Forget(p) or Close: it
// dials p now if there is no connection, and again whenever the last one
// closes, respecting the addresses' backoff. addrs are added to the
// addresses known for p. Calling it again for p only adds addresses.
func (h *Host) KeepConnected(p peer.ID, addrs ...ma.Multiaddr) {
	h.mu.Lock()
	if h.closed || p == h.id {
		h.mu.Unlock()
		return
	}
	ps := h.peerLocked(p)
	ps.addrs.add(addrs)
	if ps.keep != nil {
		h.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(h.ctx)
	k := &keeper{cancel: cancel, done: make(chan struct{})}
	ps.keep = k
	h.wg.Add(1)
	h.mu.Unlock()
	go h.keepLoop(ctx, ps, k)
}

// Forget stops keeping p connected and forgets its addresses and backoff.
// Connections to p stay open; close them with Conns(p) if needed.
func (h *Host) Forget(p peer.ID) {
	h.mu.Lock()
	ps := h.peers[p]
	var k *keeper
	if ps != nil {
		k, ps.keep = ps.keep, nil
		ps.addrs = addrBook{}
		h.gcLocked(ps)
	}
	h.mu.Unlock()
	if k != nil {
		k.cancel()
		<-k.done
	}
}

func (h *Host) keepLoop(ctx context.Context, ps *peerState, k *keeper) {
	defer h.wg.Done()
	defer close(k.done)
	for ctx.Err() == nil {
		h.mu.Lock()
		c, changed := ps.bestLocked(), ps.changed
		h.mu.Unlock()
		if c != nil {
			select { // wait until the table changes for this peer
			case <-changed:
			case <-ctx.Done():
			}
			continue
		}
		_, err := h.Connect(ctx, peer.AddrInfo{ID: ps.id})
		if err == nil {
			continue
		}
		wait := h.cfg.BackoffBase
		var de *DialError
		if errors.As(err, &de) && !de.Retry.IsZero() {
			wait = time.Until(de.Retry)
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-t.C:
		case <-changed:
			t.Stop()
		case <-ctx.Done():
			t.Stop()
		}
	}
}
