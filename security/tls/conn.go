package tls

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// Conn is a connection secured by libp2p TLS: a crypto/tls connection with
// the authenticated peer. Reads and writes are safe from concurrent
// goroutines. Close is idempotent.
//
// crypto/tls makes every write error permanent, and a record cut by a write
// deadline would corrupt the stream. Conn therefore keeps write timeouts
// recoverable, like a TCP socket's: a write whose deadline has passed sends
// nothing; a write whose deadline passes while it is blocked returns the
// timeout with the bytes it committed (encrypted records, which the next
// write sends first).
type Conn struct {
	tls           *tls.Conn
	raw           *recordWriter
	local, remote peer.ID
	remoteKey     peer.PubKey
	muxer         string

	wmu sync.Mutex // serializes Write around tls.Write

	closeOnce sync.Once
	closeErr  error
}

var _ security.Conn = (*Conn)(nil)

func (c *Conn) Read(b []byte) (int, error) { return c.tls.Read(b) }

func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.raw.deadlinePassed() {
		return 0, os.ErrDeadlineExceeded
	}
	// Records a timed-out write left behind go first; if they still
	// cannot, nothing new is encrypted.
	if err := c.raw.flush(); err != nil {
		return 0, err
	}
	n, err := c.tls.Write(b)
	if err == nil && c.raw.hasPending() {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}

// Close sends close_notify when it can (crypto/tls bounds that; a peer
// that already hung up is not an error) and closes the raw connection. It
// returns the raw connection's Close result, every time.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.raw.startClose()
		_ = c.tls.Close()
		c.closeErr = c.raw.closeResult()
	})
	return c.closeErr
}

func (c *Conn) LocalAddr() net.Addr  { return c.tls.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr { return c.tls.RemoteAddr() }

func (c *Conn) SetDeadline(t time.Time) error {
	c.raw.setWriteDeadline(t)
	return c.tls.SetDeadline(t)
}

func (c *Conn) SetReadDeadline(t time.Time) error { return c.tls.SetReadDeadline(t) }

func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.raw.setWriteDeadline(t)
	return c.tls.SetWriteDeadline(t)
}

// ConnectionState is the TLS state (version, cipher suite, ALPN).
func (c *Conn) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

// LocalPeer is this side's peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.local }

// RemotePeer is the authenticated remote peer ID.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey is the remote identity key.
func (c *Conn) RemotePublicKey() peer.PubKey { return c.remoteKey }

// Protocol returns "/tls/1.0.0".
func (c *Conn) Protocol() string { return ID }

// Muxer is the muxer agreed through ALPN, or "" when the server chose
// "libp2p".
func (c *Conn) Muxer() string { return c.muxer }

// recordWriter sits between crypto/tls and the raw connection. During the
// handshake it passes writes through. Afterwards, a write that times out
// keeps the unsent rest of the record and reports success to crypto/tls, so
// that the TLS stream stays intact; Conn.Write turns that into a timeout.
//
// A server issuing a session ticket holds it back (holdNext): crypto/tls
// writes the ticket inside Handshake, as the last record of a write (after
// the client's Finished in a full handshake; at the end of the server's
// flight when resuming), and a client that reads only what its handshake
// needs (over a synchronous pipe) would block the server's Handshake on
// it. The ticket goes out ahead of the server's first write.
type recordWriter struct {
	net.Conn

	mu       sync.Mutex // held across raw writes
	absorb   bool
	holdNext bool // hold the last record of the next write
	hold     bool // writes wait in pending until handshakeDone
	pending  []byte

	// dmu is apart from mu: setting a deadline must not wait for a
	// blocked write, it is what unblocks it.
	dmu       sync.Mutex
	wdeadline time.Time
	closing   bool
	closed    bool
	closeErr  error
}

// closeNotifyTimeout bounds the close_notify alert Close sends. crypto/tls
// allows it 5 s; a peer that is not reading (or a synchronous pipe) would
// hold Close that long for a courtesy message.
const closeNotifyTimeout = 250 * time.Millisecond

// startClose makes later write deadlines at most closeNotifyTimeout away.
func (r *recordWriter) startClose() {
	r.dmu.Lock()
	r.closing = true
	r.dmu.Unlock()
}

// SetWriteDeadline is what crypto/tls calls around close_notify; during
// Close it is clamped to closeNotifyTimeout.
func (r *recordWriter) SetWriteDeadline(t time.Time) error {
	r.dmu.Lock()
	if r.closing {
		if limit := time.Now().Add(closeNotifyTimeout); t.IsZero() || t.After(limit) {
			t = limit
		}
	}
	r.dmu.Unlock()
	return r.Conn.SetWriteDeadline(t)
}

// Close closes the raw connection and remembers the result, so that
// Conn.Close can report it without crypto/tls's close_notify error.
func (r *recordWriter) Close() error {
	err := r.Conn.Close()
	r.dmu.Lock()
	if !r.closed {
		r.closed, r.closeErr = true, err
	}
	r.dmu.Unlock()
	return err
}

func (r *recordWriter) closeResult() error {
	r.dmu.Lock()
	defer r.dmu.Unlock()
	return r.closeErr
}

func (r *recordWriter) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.holdNext {
		r.holdNext = false
		if i := lastRecord(b); i >= 0 {
			if i > 0 { // a pipe's empty write would wait for a read
				if _, err := r.Conn.Write(b[:i]); err != nil {
					return 0, err
				}
			}
			r.pending, r.hold = append(r.pending, b[i:]...), true
			return len(b), nil
		}
	}
	if r.hold {
		r.pending = append(r.pending, b...)
		return len(b), nil
	}
	if !r.absorb {
		return r.Conn.Write(b)
	}
	if len(r.pending) > 0 {
		if err := r.flushLocked(); err != nil {
			if !isTimeout(err) {
				return 0, err
			}
			r.pending = append(r.pending, b...)
			return len(b), nil
		}
	}
	n, err := r.Conn.Write(b)
	if err != nil && isTimeout(err) {
		r.pending = append(r.pending[:0], b[n:]...)
		return len(b), nil
	}
	return n, err
}

func (r *recordWriter) flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.flushLocked()
}

func (r *recordWriter) flushLocked() error {
	for len(r.pending) > 0 {
		n, err := r.Conn.Write(r.pending)
		r.pending = r.pending[n:]
		if err != nil {
			return err
		}
	}
	r.pending = nil
	return nil
}

func (r *recordWriter) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

func (r *recordWriter) handshakeDone() {
	r.mu.Lock()
	r.absorb, r.hold = true, false
	r.mu.Unlock()
}

// holdTicket makes the last record of the next write, and the writes
// after it until handshakeDone, wait in pending.
func (r *recordWriter) holdTicket() {
	r.mu.Lock()
	r.holdNext = true
	r.mu.Unlock()
}

// lastRecord is the offset of the last TLS record in b, a whole number of
// records as crypto/tls writes them, or -1 if b is not.
func lastRecord(b []byte) int {
	const header = 5
	last := -1
	for i := 0; i < len(b); {
		if len(b)-i < header {
			return -1
		}
		n := header + (int(b[i+3])<<8 | int(b[i+4]))
		if len(b)-i < n {
			return -1
		}
		last, i = i, i+n
	}
	return last
}

func (r *recordWriter) setWriteDeadline(t time.Time) {
	r.dmu.Lock()
	r.wdeadline = t
	r.dmu.Unlock()
}

func (r *recordWriter) deadlinePassed() bool {
	r.dmu.Lock()
	defer r.dmu.Unlock()
	return !r.wdeadline.IsZero() && !time.Now().Before(r.wdeadline)
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
