package yamux

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordp2p/concord/muxer"
)

// Frame layout (yamux spec.md): a 12-byte header, big endian:
//
//	version(1) type(1) flags(2) stream ID(4) length(4)
//
// followed by length payload bytes for a data frame only. For a window
// update the length is the credit added; for ping the opaque value; for
// go-away the error code.
const (
	frameData         = 0
	frameWindowUpdate = 1
	// ping (2) and go-away (3) carry no payload and no stream.
	frameGoAway = 3

	flagSYNBit = 1
	flagFINBit = 4
	flagRSTBit = 8
)

// guardedConn is the connection go-yamux reads and writes. It remembers the
// connection's first error, so that a session closed by a broken
// connection is told apart from one closed by a protocol violation, and it
// guards go-yamux's send windows against overflow.
//
// # The window-update overflow guard
//
// go-yamux v5.1.0 adds a peer's window update to a stream's send window
// with an unchecked uint32 addition (Stream.incrSendWindow), the bug class
// of rust-yamux's CVE-2026-31814. In Go the sum wraps silently: a crafted
// update turns the window into any value the peer likes, for example 0,
// which stalls the stream's writers although the peer has granted credit.
// The guard mirrors every stream's send window from the frames that cross
// the connection: the initial 256 KiB at the SYN, minus each data frame
// written, plus each window update read. A window update that would take
// the mirrored window past 2^32-1 is refused before go-yamux sees it: the
// read fails with muxer.ErrProtocol and the session closes.
//
// The mirror never undercounts go-yamux's window: it adds credit when the
// bytes are read, before go-yamux does, and subtracts data when it is
// handed to the connection, after go-yamux has. So every update that would
// overflow go-yamux's window is caught. It can overcount by the data queued
// in go-yamux's send queue (at most 64 frames), so an update within a few
// MiB of the 4 GiB limit might be refused although go-yamux would have
// survived it; no implementation grants windows that large.
type guardedConn struct {
	net.Conn
	err atomic.Pointer[error] // first error of the underlying connection

	mu      sync.Mutex             // guards the fields below
	in, out frameScanner           // parsing state of each direction
	windows map[uint32]*sendWindow // open streams by ID
	bad     error                  // set once the peer violated the protocol

	// goAwaySent is closed once a go-away frame is handed to the
	// connection: every frame go-yamux queued before it was written
	// already, since its send queue is first in, first out (pings
	// excepted).
	goAwaySent     chan struct{}
	goAwaySentOnce sync.Once

	// The inbound gate, for Shutdown (see hold).
	holdMu       sync.Mutex    // one hold at a time
	rmu          sync.Mutex    // guards the fields below
	parked       bool          // go-yamux's reader is in Read and has delivered nothing yet
	parkedSignal chan struct{} // closed when the reader next enters Read
	gate         chan struct{} // while non-nil, Read delivers nothing; closed to reopen
}

// sendWindow mirrors one stream's send window.
type sendWindow struct {
	credit int64 // may dip below 0 only transiently, see above
}

func newGuardedConn(c net.Conn) *guardedConn {
	return &guardedConn{Conn: c, windows: make(map[uint32]*sendWindow), goAwaySent: make(chan struct{})}
}

func (c *guardedConn) Read(p []byte) (int, error) {
	c.enterRead()
	n, err := c.Conn.Read(p)
	c.leaveRead()
	if n > 0 {
		c.mu.Lock()
		if c.bad == nil {
			c.bad = c.in.scan(p[:n], c.inbound)
		}
		bad := c.bad
		c.mu.Unlock()
		if bad != nil {
			// go-yamux never sees the offending bytes.
			return 0, bad
		}
	}
	if err != nil {
		c.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Write scans the frames before writing them, so that a go-away is
// recorded before the peer can answer it. A write that fails leaves the
// mirror ahead of the wire, which does not matter: the session ends.
func (c *guardedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	_ = c.out.scan(p, c.outbound) // outbound never fails
	c.mu.Unlock()
	n, err := c.Conn.Write(p)
	if err != nil {
		c.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

func (c *guardedConn) firstErr() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

// window returns the mirror for id, creating it at a SYN. mu must be held.
func (c *guardedConn) window(id uint32, flags uint16) *sendWindow {
	w := c.windows[id]
	if w == nil && flags&flagSYNBit != 0 {
		w = &sendWindow{credit: initialStreamWindow}
		c.windows[id] = w
	}
	return w
}

// closeFlags forgets a stream once this side can no longer send on it
// (it sent FIN or RST) or the peer reset it: its send window no longer
// matters. go-yamux forgets a stream only later or at the same frame, so
// the mirror holds no more streams than go-yamux does. mu must be held.
func (c *guardedConn) closeFlags(id uint32, flags uint16, outbound bool) {
	if flags&flagRSTBit != 0 || outbound && flags&flagFINBit != 0 {
		delete(c.windows, id)
	}
}

// inbound handles a header the peer sent. mu must be held.
func (c *guardedConn) inbound(h []byte) error {
	typ, flags, id, length := parseHeader(h)
	if typ != frameData && typ != frameWindowUpdate {
		return nil
	}
	w := c.window(id, flags)
	if w == nil {
		return nil // go-yamux ignores frames of unknown streams too
	}
	if typ == frameWindowUpdate {
		w.credit += int64(length)
		if w.credit > math.MaxUint32 {
			return fmt.Errorf("%w: window update of %d on stream %d overflows its send window (uint32)",
				muxer.ErrProtocol, length, id)
		}
	}
	c.closeFlags(id, flags, false)
	return nil
}

// outbound handles a header go-yamux sent. mu must be held.
func (c *guardedConn) outbound(h []byte) error {
	typ, flags, id, length := parseHeader(h)
	if typ == frameGoAway {
		c.goAwaySentOnce.Do(func() { close(c.goAwaySent) })
		return nil
	}
	if typ != frameData && typ != frameWindowUpdate {
		return nil
	}
	w := c.window(id, flags)
	if w == nil {
		return nil
	}
	if typ == frameData {
		w.credit -= int64(length)
	}
	c.closeFlags(id, flags, true)
	return nil
}

func parseHeader(h []byte) (typ uint8, flags uint16, id, length uint32) {
	return h[1], binary.BigEndian.Uint16(h[2:4]), binary.BigEndian.Uint32(h[4:8]), binary.BigEndian.Uint32(h[8:12])
}

// frameScanner finds frame headers in a byte stream delivered in pieces.
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

// tracked is the number of streams the guard mirrors.
func (c *guardedConn) tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.windows)
}

// hold stops inbound bytes from reaching go-yamux and waits until its
// reader is back inside Read, which proves that every frame delivered
// before has been handled: go-yamux's receive loop handles a header (a new
// stream, say) before it reads further, and a read buffer in front of the
// guard calls Read only once it is empty. Until release is called, no
// frame the peer sends is handled. It fails when ctx ends or the reader is
// busy elsewhere (blocked handing a frame to a full send queue) for
// longer than holdWait.
func (c *guardedConn) hold(ctx context.Context) (release func(), err error) {
	c.holdMu.Lock()
	gate := make(chan struct{})
	var once sync.Once
	release = func() {
		once.Do(func() {
			c.rmu.Lock()
			c.gate = nil
			c.rmu.Unlock()
			close(gate)
			c.holdMu.Unlock()
		})
	}
	c.rmu.Lock()
	c.gate = gate
	if c.parked {
		c.rmu.Unlock()
		return release, nil
	}
	if c.parkedSignal == nil {
		c.parkedSignal = make(chan struct{})
	}
	sig := c.parkedSignal
	c.rmu.Unlock()
	t := time.NewTimer(holdWait)
	defer t.Stop()
	select {
	case <-sig:
		return release, nil
	case <-ctx.Done():
		release()
		return nil, context.Cause(ctx)
	case <-t.C:
		release()
		return nil, errReaderBusy
	}
}

// holdWait bounds hold's wait for go-yamux's reader.
const holdWait = 100 * time.Millisecond

var errReaderBusy = errors.New("the session's reader did not return to the connection")

// enterRead records that the reader waits for the connection.
func (c *guardedConn) enterRead() {
	c.rmu.Lock()
	c.parked = true
	if c.parkedSignal != nil {
		close(c.parkedSignal)
		c.parkedSignal = nil
	}
	c.rmu.Unlock()
}

// leaveRead waits while a hold keeps the gate shut, then lets the bytes
// read through.
func (c *guardedConn) leaveRead() {
	c.rmu.Lock()
	for c.gate != nil {
		g := c.gate
		c.rmu.Unlock()
		<-g
		c.rmu.Lock()
	}
	c.parked = false
	c.rmu.Unlock()
}
