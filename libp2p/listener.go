package concordlibp2p

import (
	"context"
	"errors"
	"net"

	"github.com/libp2p/go-libp2p/core/transport"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/upgrader"
)

// listener is go-libp2p's transport.Listener over Concord's upgrading
// Listener, which runs the upgrades concurrently under its admission
// limits.
type listener struct {
	t     *Transport
	ul    *upgrader.Listener
	maddr ma.Multiaddr
}

func newListener(t *Transport, ul *upgrader.Listener, maddr ma.Multiaddr) *listener {
	return &listener{t: t, ul: ul, maddr: maddr}
}

// Accept returns the next upgraded connection; transport.ErrListenerClosed
// after Close.
func (l *listener) Accept() (transport.CapableConn, error) {
	for {
		uc, err := l.ul.Accept(context.Background())
		if err != nil {
			if errors.Is(err, upgrader.ErrClosed) {
				return nil, transport.ErrListenerClosed
			}
			return nil, err
		}
		// A connection whose peer closed it right after the handshake is
		// still returned, closed: go-libp2p's swarm sees it end, as with
		// its own transport. (It was dropped here once, when the raw
		// connection was found by its 4-tuple in a table its close
		// emptied: the Accept never came.)
		rc, ok := uc.Raw().(*rawConn)
		if !ok { // cannot happen: rawListener made every raw connection
			_ = uc.Close()
			continue
		}
		// An error here is the peer's (a key go-libp2p cannot represent),
		// and the connection is closed; an Accept error would stop
		// go-libp2p's swarm from listening at all.
		c, err := l.t.capable(uc, rc)
		if err != nil {
			continue
		}
		return c, nil
	}
}

// Close stops listening and aborts the upgrades in flight.
func (l *listener) Close() error { return l.ul.Close() }

func (l *listener) Addr() net.Addr { return l.ul.Addr() }

func (l *listener) Multiaddr() ma.Multiaddr { return l.maddr }
