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

// Buffers. An idle connection holds no frame buffer of its own beyond
// rsmall: the reader waits for the next frame with the small inline buffer,
// and larger buffers come from pools for as long as a frame needs them.
const (
	// smallRead is the inline read buffer an idle reader waits with. Small
	// frames (yamux window updates, pings, short messages) are read and
	// decrypted in it without touching a pool.
	smallRead = 256
	// midBuf and bigBuf are the two pooled buffer sizes: midBuf for
	// frames of at most 4 KiB with their length prefix, bigBuf for the
	// largest frame and the start of the next one. In a bulk transfer
	// whose frames are all full, a read into a buffer of exactly one frame
	// would end at a frame boundary and release the buffer each time, and
	// the next frame would cost a read into rsmall first; with the extra
	// room a reader that is behind always holds part of the next frame,
	// keeps its buffer and does one read per frame.
	midBuf = 4096
	bigBuf = lenPrefix + maxMessage + smallRead
)

// bufPools hold frame buffers shared by every Conn: midPool buffers of
// midBuf bytes, bigPool buffers of bigBuf bytes. They hold *[]byte so that
// Put does not allocate.
var (
	midPool = sync.Pool{New: func() any { b := make([]byte, midBuf); return &b }}
	bigPool = sync.Pool{New: func() any { b := make([]byte, bigBuf); return &b }}
)

// getBuf returns a pooled buffer of at least n (≤ bigBuf) bytes.
func getBuf(n int) *[]byte {
	if n <= midBuf {
		return midPool.Get().(*[]byte)
	}
	return bigPool.Get().(*[]byte)
}

// putBuf returns a buffer from getBuf to its pool.
func putBuf(p *[]byte) {
	if cap(*p) >= bigBuf {
		bigPool.Put(p)
	} else {
		midPool.Put(p)
	}
}

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
	//
	// rbuf holds the frames being received (len(rbuf) is what was read),
	// from offset 0 of either rsmall or the pooled buffer rpool. Frames are
	// decrypted in place, so a pooled read buffer is cleared before it goes
	// back to the pool: another connection never receives a buffer that
	// held this one's plaintext.
	rmu    sync.Mutex
	recv   *noise.CipherState
	rsmall [smallRead]byte
	rpool  *[]byte // pooled buffer under rbuf, nil when rbuf is in rsmall
	rhigh  int     // bytes of rpool written since it was taken: all cleared
	rbuf   []byte
	rstart int // start of the first frame not yet decrypted
	// lastFrame is the size of the last frame decrypted, length prefix
	// included.
	lastFrame int
	plain     []byte // decrypted bytes not yet returned, inside rbuf
	rerr      error  // permanent read error

	// Owned by the writer, under wmu. wpool is a pooled buffer held during
	// a Write, and after it only while wpending is not empty. It only ever
	// holds ciphertext (Encrypt does not work in place), so it goes back
	// to its pool without clearing.
	wmu      sync.Mutex
	send     *noise.CipherState
	wpool    *[]byte
	wpending []byte // rest of a frame whose write timed out, inside wpool
	werr     error  // permanent write error
}

var _ security.Conn = (*Conn)(nil)

func newConn(raw net.Conn, h *handshake) *Conn {
	c := &Conn{
		raw:       raw,
		local:     h.t.local,
		remote:    h.remoteID,
		remoteKey: h.remoteKey,
		muxer:     h.muxer,
		closed:    make(chan struct{}),
		recv:      h.recv,
		send:      h.send,
	}
	c.rbuf = c.rsmall[:0]
	return c
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
	if len(c.plain) == 0 && c.rstart == len(c.rbuf) {
		// Everything read is consumed. Wait for the next frame with
		// rsmall only, unless the last frame was of medium size: then
		// keep the medium buffer, so that a stream of medium frames costs
		// one read each, not a read into rsmall and another for the rest.
		if c.rpool != nil && cap(*c.rpool) == midBuf && c.lastFrame > smallRead {
			c.rbuf, c.rstart = c.rbuf[:0], 0
		} else {
			c.releaseRead()
		}
	}
	return n, nil
}

// releaseRead empties rbuf and gives its pooled buffer back.
func (c *Conn) releaseRead() {
	c.dropPool()
	c.rbuf, c.rstart, c.plain = c.rsmall[:0], 0, nil
}

// dropPool clears every byte written to the pooled read buffer since it was
// taken (compaction may have left plaintext beyond len(rbuf)) and returns
// it to its pool. rbuf must not be used until it is set again.
func (c *Conn) dropPool() {
	if c.rpool == nil {
		return
	}
	clear((*c.rpool)[:max(c.rhigh, len(c.rbuf))])
	putBuf(c.rpool)
	c.rpool, c.rhigh = nil, 0
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
				c.lastFrame = lenPrefix + size
				c.plain = pt
				return nil
			}
			c.makeRoom(lenPrefix + size)
		} else {
			c.makeRoom(lenPrefix)
		}
		n, err := c.raw.Read(c.rbuf[len(c.rbuf):cap(c.rbuf)])
		c.rbuf = c.rbuf[:len(c.rbuf)+n]
		c.rhigh = max(c.rhigh, len(c.rbuf))
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

// makeRoom makes rbuf able to hold a frame of need (≤ bigBuf) bytes from
// rstart: it drops consumed frames and moves to a larger buffer when the
// current one is too small.
func (c *Conn) makeRoom(need int) {
	if cap(c.rbuf)-c.rstart >= need && cap(c.rbuf) > len(c.rbuf) {
		return
	}
	rest := c.rbuf[c.rstart:]
	if c.rpool == nil && len(c.rbuf) == smallRead {
		// The last read filled rsmall, so more is probably waiting:
		// read it in larger pieces.
		need = max(need, midBuf)
	}
	if cap(c.rbuf) >= need {
		c.rbuf = append(c.rbuf[:0], rest...) // copy handles the overlap
		c.rstart = 0
		return
	}
	p := getBuf(need)
	buf := append((*p)[:0], rest...)
	c.dropPool()
	c.rpool, c.rbuf, c.rstart, c.rhigh = p, buf, 0, len(buf)
}

func (c *Conn) readFailed(err error) error {
	if c.isClosed() && !errors.Is(err, ErrDecrypt) {
		err = net.ErrClosed
	}
	c.rerr = err
	c.releaseRead() // nothing more is read
	return err
}

// Write encrypts b in messages of at most 65519 plaintext bytes.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	n, err := c.write(b)
	if len(c.wpending) == 0 && c.wpool != nil {
		putBuf(c.wpool)
		c.wpool = nil
	}
	return n, err
}

func (c *Conn) write(b []byte) (int, error) {
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
		// The buffer was sized for the earlier write.
		putBuf(c.wpool)
		c.wpool = nil
	}
	if len(b) == 0 {
		return 0, nil
	}
	if c.wpool == nil {
		c.wpool = getBuf(lenPrefix + min(len(b), maxPlaintext) + tagSize)
	}
	written := 0
	for len(b) > 0 {
		chunk := b[:min(len(b), maxPlaintext)]
		nonce := c.send.Nonce()
		frame, err := c.send.Encrypt((*c.wpool)[:lenPrefix], nil, chunk)
		if err != nil {
			c.werr = fmt.Errorf("security/noise: encrypting: %w", err)
			return written, c.werr
		}
		binary.BigEndian.PutUint16(frame, uint16(len(frame)-lenPrefix))
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
	c.wpending = nil // never sent now
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
