package tcp

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/concordp2p/concord/network"
	ma "github.com/multiformats/go-multiaddr"
)

// Listener accepts TCP connections for a Transport.
type Listener struct {
	t     *Transport
	ln    *net.TCPListener
	addr  *net.TCPAddr // the bound address (port filled in)
	maddr ma.Multiaddr
	ipv6  bool

	closeOnce sync.Once
	closeErr  error
}

// Accept waits for the next connection and returns it with its socket
// options set and Direction DirInbound. After Close it returns an error
// wrapping net.ErrClosed.
//
// A connection on which the socket options cannot be set (it was reset
// while waiting in the accept queue, typically) is closed and skipped: it
// could not have been used.
func (l *Listener) Accept() (*Conn, error) {
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			return nil, err
		}
		conn, err := l.t.wrap(c, ConnInfo{Direction: network.DirInbound, FromListenPort: true})
		if err != nil {
			c.Close()
			continue
		}
		return conn, nil
	}
}

// Close stops listening. Connections already accepted are not affected.
// Later dials of the Transport no longer use this listener's port.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		l.t.removeListener(l)
		l.closeErr = l.ln.Close()
	})
	if errors.Is(l.closeErr, net.ErrClosed) {
		return nil
	}
	return l.closeErr
}

// Addr returns the bound address, with the port chosen by the kernel when
// port 0 was asked for.
func (l *Listener) Addr() net.Addr { return l.addr }

// Multiaddr returns the bound address as a multiaddr.
func (l *Listener) Multiaddr() ma.Multiaddr { return l.maddr }

// SetDeadline sets a deadline for Accept; the zero time means none.
func (l *Listener) SetDeadline(t time.Time) error { return l.ln.SetDeadline(t) }
