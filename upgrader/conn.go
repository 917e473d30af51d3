package upgrader

import (
	"context"
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/simopen"
)

// Conn is an upgraded connection: authenticated, encrypted and
// multiplexed. Its methods are safe for concurrent use. Closing it closes
// the session, the secure channel and the TCP connection.
type Conn struct {
	sess     muxer.Session
	sec      security.Conn
	dir      network.Direction
	role     network.Role
	election *simopen.Election
	security string
	muxer    string
	inlined  bool
	local    ma.Multiaddr
	remote   ma.Multiaddr
	raw      net.Conn
}

// Raw is the connection the upgrade ran on, as passed to Upgrade or
// returned by the RawListener's Accept: for bookkeeping a caller keeps on
// its own connection type (a RawConnGater's, say). Reading, writing or
// setting deadlines on it corrupts the session; Close closes it anyway.
func (c *Conn) Raw() net.Conn { return c.raw }

// LocalPeer is this side's peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.sec.LocalPeer() }

// RemotePeer is the authenticated remote peer ID.
func (c *Conn) RemotePeer() peer.ID { return c.sec.RemotePeer() }

// RemotePublicKey is the remote identity key the handshake verified.
func (c *Conn) RemotePublicKey() peer.PubKey { return c.sec.RemotePublicKey() }

// Direction says whether this side dialed or accepted the TCP connection.
func (c *Conn) Direction() network.Direction { return c.dir }

// Role is the part this side played after the election: the initiator ran
// the security handshake's initiator side and is the yamux client.
func (c *Conn) Role() network.Role { return c.role }

// Election is the simopen election record, nil when no election happened
// (a single dialer).
func (c *Conn) Election() *simopen.Election { return c.election }

// Security is the security protocol ID, e.g. "/noise".
func (c *Conn) Security() string { return c.security }

// Muxer is the stream multiplexer protocol ID, e.g. "/yamux/1.0.0".
func (c *Conn) Muxer() string { return c.muxer }

// MuxerInlined reports whether the muxer was agreed inside the security
// handshake (saving a round trip) rather than with multistream-select.
func (c *Conn) MuxerInlined() bool { return c.inlined }

// LocalMultiaddr is the local transport address, nil if it is not TCP.
func (c *Conn) LocalMultiaddr() ma.Multiaddr { return c.local }

// RemoteMultiaddr is the remote transport address, nil if it is not TCP.
func (c *Conn) RemoteMultiaddr() ma.Multiaddr { return c.remote }

// OpenStream opens a new stream; ctx bounds only the opening.
func (c *Conn) OpenStream(ctx context.Context) (muxer.Stream, error) { return c.sess.OpenStream(ctx) }

// AcceptStream waits for the peer's next stream.
func (c *Conn) AcceptStream(ctx context.Context) (muxer.Stream, error) {
	return c.sess.AcceptStream(ctx)
}

// Ping measures the round-trip time with a muxer-level ping.
func (c *Conn) Ping(ctx context.Context) (time.Duration, error) { return c.sess.Ping(ctx) }

// Session is the underlying muxer session.
func (c *Conn) Session() muxer.Session { return c.sess }

// Close closes the connection. It is idempotent.
func (c *Conn) Close() error { return c.sess.Close() }

// Done is closed when the connection has closed, for whatever reason.
func (c *Conn) Done() <-chan struct{} { return c.sess.Done() }

// Err says why the connection closed, nil while it is open.
func (c *Conn) Err() error { return c.sess.Err() }

// IsClosed reports whether the connection has closed.
func (c *Conn) IsClosed() bool { return c.sess.IsClosed() }
