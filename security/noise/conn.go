package noise

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// ErrDecrypt is the read error after a transport message failed
// authentication: the peer, or something on the path, altered the stream.
// The connection is closed when it happens.
var ErrDecrypt = errors.New("security/noise: transport message failed authentication")

// initialBuf is the first size of the per-connection frame buffers; they
// grow, once, to the largest frame the connection carries.
const initialBuf = 4096

// Conn is a connection secured by libp2p Noise. Reads are safe from any
// number of goroutines (they are serialized), writes likewise, and a reader
// and a writer run in parallel. A read or write that times out leaves the
// stream intact: the frame it was in the middle of is resumed by the next
// call. Any other read error, or write error, is permanent for that
// direction.
type Conn struct {
	raw           net.Conn
	local, remote peer.ID
	remoteKey     peer.PubKey
	muxer         string
	closeOnce     sync.Once
	closeErr      error
	closed        chan struct{}

	// Owned by the reader, under rmu.
	rmu    sync.Mutex
	recv   *noise.CipherState
	rbuf   []byte // ciphertext frames being received; len(rbuf) is what was read
	rstart int    // start of the first frame not yet decrypted
	plain  []byte // decrypted bytes not yet returned, inside rbuf
	rerr   error  // permanent read error

	// Owned by the writer, under wmu.
	wmu      sync.Mutex
	send     *noise.CipherState
	wbuf     []byte
	wpending []byte // rest of a frame whose write timed out, inside wbuf
	werr     error  // permanent write error
}

var _ security.Conn = (*Conn)(nil)

func newConn(raw net.Conn, h *handshake) *Conn {
	return &Conn{
		raw:       raw,
		local:     h.t.local,
		remote:    h.remoteID,
		remoteKey: h.remoteKey,
		muxer:     h.muxer,
		closed:    make(chan struct{}),
		recv:      h.recv,
		send:      h.send,
		rbuf:      make([]byte, 0, initialBuf),
		wbuf:      make([]byte, 0, initialBuf),
	}
}

// Read reads decrypted bytes.
func (c *Conn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if c.isClosed() {
			return 0, net.ErrClosed
		}
		if err := c.nextFrame(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.plain)
	c.plain = c.plain[n:]
	return n, nil
}

// nextFrame decrypts the next complete frame into c.plain, reading from the
// raw connection until one is complete.
func (c *Conn) nextFrame() error {
	for {
		avail := c.rbuf[c.rstart:]
		if len(avail) >= lenPrefix {
			size := int(binary.BigEndian.Uint16(avail))
			if size < tagSize {
				return c.readFailed(fmt.Errorf("%w: transport message of %d bytes, shorter than its tag", security.ErrProtocol, size))
			}
			if len(avail) >= lenPrefix+size {
				ct := avail[lenPrefix : lenPrefix+size]
				pt, err := c.recv.Decrypt(ct[:0], nil, ct)
				if err != nil {
					_ = c.Close()
					return c.readFailed(fmt.Errorf("%w: %w", ErrDecrypt, err))
				}
				c.rstart += lenPrefix + size
				c.plain = pt
				return nil
			}
			c.makeRoom(lenPrefix + size)
		} else {
			c.makeRoom(lenPrefix)
		}
		n, err := c.raw.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		if n > 0 {
			// Use what arrived; a lasting error comes back next time.
			continue
		}
		if err == nil {
			continue
		}
		if isTimeout(err) {
			return err
		}
		if errors.Is(err, io.EOF) && len(c.rbuf) > c.rstart {
			err = fmt.Errorf("%w: connection ended inside a transport message: %w", security.ErrProtocol, io.ErrUnexpectedEOF)
		}
		return c.readFailed(err)
	}
}

// makeRoom makes rbuf able to hold a frame of need bytes from rstart: it
// drops consumed frames and grows the buffer when it is too small.
func (c *Conn) makeRoom(need int) {
	if cap(c.rbuf)-c.rstart >= need && cap(c.rbuf) > len(c.rbuf) {
		return
	}
	rest := c.rbuf[c.rstart:]
	buf := c.rbuf[:0]
	if cap(c.rbuf) < need {
		buf = make([]byte, 0, max(need, lenPrefix+maxMessage))
	}
	c.rbuf = append(buf, rest...) // copy handles the overlap
	c.rstart = 0
}

func (c *Conn) readFailed(err error) error {
	if c.isClosed() && !errors.Is(err, ErrDecrypt) {
		err = net.ErrClosed
	}
	c.rerr = err
	return err
}

// Write encrypts b in messages of at most 65519 plaintext bytes.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	if len(c.wpending) > 0 {
		if _, err := c.flushPending(); err != nil {
			return 0, err
		}
	}
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), maxPlaintext)]
		nonce := c.send.Nonce()
		frame, err := c.send.Encrypt(c.wbuf[:lenPrefix], nil, chunk)
		if err != nil {
			c.werr = fmt.Errorf("security/noise: encrypting: %w", err)
			return written, c.werr
		}
		binary.BigEndian.PutUint16(frame, uint16(len(frame)-lenPrefix))
		c.wbuf = frame[:0]
		c.wpending = frame
		sent, err := c.flushPending()
		if sent == 0 && err != nil {
			// Nothing of the frame left: the chunk was not written. After
			// a timeout, take its nonce back and drop the frame so that
			// the stream stays intact.
			c.send.SetNonce(nonce)
			c.wpending = nil
			return written, err
		}
		// Once a byte of the frame left, the chunk is committed: the
		// rest of the frame goes out first in the next Write.
		written += len(chunk)
		b = b[len(chunk):]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// flushPending writes c.wpending and reports how many bytes left. A timeout
// keeps the rest pending; any other error is permanent.
func (c *Conn) flushPending() (int, error) {
	n, err := c.raw.Write(c.wpending)
	c.wpending = c.wpending[n:]
	if err == nil {
		return n, nil
	}
	if isTimeout(err) {
		return n, err
	}
	if c.isClosed() {
		err = net.ErrClosed
	}
	c.werr = err
	return n, err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *Conn) isClosed() bool {
	select {
	case <-c.closed:
		return true
	default:
		return false
	}
}

// Close closes the raw connection. It is idempotent: every call returns the
// first call's result.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.closeErr = c.raw.Close()
	})
	return c.closeErr
}

func (c *Conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// LocalPeer is this side's peer ID.
func (c *Conn) LocalPeer() peer.ID { return c.local }

// RemotePeer is the authenticated remote peer ID.
func (c *Conn) RemotePeer() peer.ID { return c.remote }

// RemotePublicKey is the remote identity key.
func (c *Conn) RemotePublicKey() peer.PubKey { return c.remoteKey }

// Protocol returns "/noise".
func (c *Conn) Protocol() string { return ID }

// Muxer is the muxer agreed in the handshake, or "".
func (c *Conn) Muxer() string { return c.muxer }
