package tcp

import (
	"net"

	"github.com/concordp2p/concord/network"
	ma "github.com/multiformats/go-multiaddr"
)

// Conn is a TCP connection made by a Transport: a *net.TCPConn (all of its
// methods are available, CloseWrite included) plus what the transport knows
// about how it was made.
//
// Close is graceful: the kernel sends FIN after the data already written.
// The transport never sets SO_LINGER. Note a Linux rule: closing a socket
// whose receive buffer still holds unread data sends RST instead (RFC 2525,
// 2.17), and the peer may lose data it has not read yet; a protocol that
// needs its last bytes delivered should CloseWrite and read to EOF first.
type Conn struct {
	*net.TCPConn
	info ConnInfo
}

// ConnInfo describes how a Conn was made.
type ConnInfo struct {
	// Direction is DirOutbound for dialed connections (including both
	// ends of a TCP simultaneous open) and DirInbound for accepted ones.
	Direction network.Direction
	// Local and Remote are the connection's addresses as multiaddrs.
	Local, Remote ma.Multiaddr
	// FromListenPort reports whether the local port is the port of one of
	// the Transport's listeners: always for accepted connections; for
	// dialed ones when the dial bound a listener's port.
	FromListenPort bool
	// Fallback reports that the dial first tried from a listener's port,
	// the kernel refused that 4-tuple, and the connection was made from
	// an ephemeral port instead. FallbackCause is the refusal.
	Fallback      bool
	FallbackCause error
}

// Info returns how the connection was made.
func (c *Conn) Info() ConnInfo { return c.info }

// Direction reports whether this side dialed or accepted.
func (c *Conn) Direction() network.Direction { return c.info.Direction }

// LocalMultiaddr returns the local address as a multiaddr.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.info.Local }

// RemoteMultiaddr returns the remote address as a multiaddr.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.info.Remote }
