package yamux

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordp2p/concord/muxer"
)

// Frame layout (yamux spec.md): a 12-byte header, big endian,
//
//	version(1) type(1) flags(2) stream ID(4) length(4)
//
// then, for a data frame only, length payload bytes. The length of a window
// update is the credit it grants.
const (
	headerSize        = 12
	frameData         = 0
	frameWindowUpdate = 1
	frameGoAway       = 3
	flagSYNBit        = 1
	flagFINBit        = 4
	flagRSTBit        = 8
)

// guardedConn is the connection go-yamux reads and writes. It supplies
// three things go-yamux v5.1.0 does not:
//
//   - The connection's first error. go-yamux ends a session with the
//     connection's error as is, so without it Err could not tell a broken
//     connection (muxer.ErrConnClosed) from a frame go-yamux refused
//     (muxer.ErrProtocol): a peer's close seen as a broken pipe
//     (muxertest's SessionClose over TCP) would read as the latter.
//   - goAwaySent, closed when the go-away frame is handed to the
//     connection. go-yamux queues frames and reports none written;
//     Shutdown starts its linger from there (TestShutdownSlowPeer).
//   - A check of every window update against overflow, below.
//   - When each stream's data last left for the connection, for the
//     write-stall timeout (lastSent, and stream.Write).
//
// # Window-update overflow (rust-yamux CVE-2026-31814)
//
// go-yamux adds a window update to a stream's send window unchecked
// (Stream.incrSendWindow: atomic.AddUint32), so a peer's update can wrap
// the window to any value it likes, 0 for instance
// (TestGoYamuxWindowOverflowUnguarded pins this). go-yamux exposes neither
// the window nor its table of streams, so the guard keeps an account per
// stream: 256 KiB at the SYN, less each data frame written, plus each
// window update read; it forgets a stream at a RST either way and at this
// side's FIN. Both directions are needed: the data go-yamux sends lowers
// the window, and the RSTs it sends for streams it refuses end streams the
// adapter never sees. An update that takes the account past 2^32-1 fails
// the read with muxer.ErrProtocol before go-yamux sees it, which closes the
// session (TestWindowUpdateOverflow).
//
// Credit is counted when read, before go-yamux adds it, so no overflowing
// update passes. Data is counted when written, after go-yamux has queued
// it, so the account can exceed the window by what is queued (at most 64
// frames): an update within a few MiB of 4 GiB may be refused that
// go-yamux would have absorbed.
type guardedConn struct {
	net.Conn
	err atomic.Pointer[error] // first error of the connection

	mu      sync.Mutex               // guards the fields below
	in, out frameScanner             // where each direction is in its frames
	credit  map[uint32]streamAccount // by stream ID
	bad     error                    // the refused update, once there is one

	goAwaySent     chan struct{}
	goAwaySentOnce sync.Once
}

// streamAccount is what the guard knows of one stream.
type streamAccount struct {
	window int64     // send window account
	sent   uint64    // data bytes written to the connection
	sentAt time.Time // when the last of them was
}

func newGuardedConn(c net.Conn) *guardedConn {
	return &guardedConn{Conn: c, credit: make(map[uint32]streamAccount), goAwaySent: make(chan struct{})}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		if c.bad == nil {
			c.bad = c.in.scan(p[:n], func(h []byte) error { return c.account(h, true) })
		}
		bad := c.bad
		c.mu.Unlock()
		if bad != nil {
			return 0, bad // go-yamux never sees the update
		}
	}
	c.record(err)
	return n, err
}

// Write accounts for the frames before writing them, so that goAwaySent is
// closed before the peer can answer the go-away.
func (c *guardedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	_ = c.out.scan(p, func(h []byte) error { return c.account(h, false) })
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	c.record(err)
	return n, err
}

func (c *guardedConn) record(err error) {
	if err != nil {
		c.err.CompareAndSwap(nil, &err)
	}
}

func (c *guardedConn) firstErr() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// account updates the send window account for a header read (inbound) or
// written. Only an inbound update can fail. mu must be held.
func (c *guardedConn) account(h []byte, inbound bool) error {
	typ, flags, id, length := parseHeader(h)
	if typ == frameGoAway && !inbound {
		c.goAwaySentOnce.Do(func() { close(c.goAwaySent) })
	}
	if typ != frameData && typ != frameWindowUpdate {
		return nil
	}
	a, ok := c.credit[id]
	if !ok && flags&flagSYNBit != 0 {
		a, ok = streamAccount{window: initialStreamWindow}, true
	}
	if !ok {
		return nil // go-yamux ignores frames of streams it does not know too
	}
	switch {
	case inbound && typ == frameWindowUpdate:
		if a.window += int64(length); a.window > math.MaxUint32 {
			return fmt.Errorf("%w: window update of %d on stream %d overflows its send window (uint32)",
				muxer.ErrProtocol, length, id)
		}
	case !inbound && typ == frameData && length > 0:
		a.window -= int64(length)
		a.sent += uint64(length)
		a.sentAt = time.Now()
	}
	if flags&flagRSTBit != 0 || !inbound && flags&flagFINBit != 0 {
		delete(c.credit, id) // this side sends no more on it
	} else {
		c.credit[id] = a
	}
	return nil
}

// lastSent returns when stream id's data last left for the connection,
// and whether at least upTo bytes of it have (false too once the stream
// is forgotten). go-yamux's send loop takes frames from its queue in
// order and writes each at once, so when all the bytes a Write queued
// have been written, the last of them was queued at or before that time.
func (c *guardedConn) lastSent(id uint32, upTo uint64) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.credit[id]
	return a.sentAt, ok && a.sent >= upTo
}

// tracked is the number of streams in the account.
func (c *guardedConn) tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.credit)
}

func parseHeader(h []byte) (typ uint8, flags uint16, id, length uint32) {
	return h[1], binary.BigEndian.Uint16(h[2:4]), binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint32(h[8:12])
}

// frameScanner finds frame headers in a byte stream that arrives in pieces.
type frameScanner struct {
	hdr  [headerSize]byte
	have int    // header bytes collected so far
	skip uint32 // payload bytes of the current data frame still to pass
}

// scan feeds p through the scanner and calls f with each complete header.
func (s *frameScanner) scan(p []byte, f func(h []byte) error) error {
	for len(p) > 0 {
		if s.skip > 0 {
			n := uint32(min(uint64(s.skip), uint64(len(p))))
			s.skip -= n
			p = p[n:]
			continue
		}
		n := copy(s.hdr[s.have:], p)
		s.have += n
		p = p[n:]
		if s.have < headerSize {
			return nil
		}
		s.have = 0
		if err := f(s.hdr[:]); err != nil {
			return err
		}
		if s.hdr[1] == frameData {
			s.skip = binary.BigEndian.Uint32(s.hdr[8:12])
		}
	}
	return nil
}
