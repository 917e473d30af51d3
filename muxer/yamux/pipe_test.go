package yamux

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// newPipe returns the two ends of an in-memory connection with capacity
// bytes of buffer in each direction. Unlike net.Pipe it is not synchronous:
// a write returns once its bytes are buffered, and blocks while the buffer
// is full, as a TCP socket whose peer stops reading does. It blocks on a
// sync.Cond, so it works inside a synctest bubble (blocked goroutines are
// durably blocked and deadlines use the bubble's clock).
func newPipe(capacity int) (*pipeEnd, *pipeEnd) {
	ab, ba := newHalf(capacity), newHalf(capacity)
	a := &pipeEnd{in: ba, out: ab, local: pipeAddr("a"), remote: pipeAddr("b")}
	b := &pipeEnd{in: ab, out: ba, local: pipeAddr("b"), remote: pipeAddr("a")}
	return a, b
}

type pipeAddr string

func (a pipeAddr) Network() string { return "mempipe" }
func (a pipeAddr) String() string  { return string(a) }

// half is one direction of a pipe.
type half struct {
	mu        sync.Mutex
	cond      sync.Cond
	buf       []byte
	capacity  int
	writeDone bool // writer closed: reader drains, then io.EOF
	readDone  bool // reader closed: writes fail
	rdl, wdl  deadline
}

type deadline struct {
	t     time.Time
	timer *time.Timer
}

func newHalf(capacity int) *half {
	h := &half{capacity: capacity}
	h.cond.L = &h.mu
	return h
}

// set arms d for t and wakes waiters when it passes. mu must be held.
func (h *half) set(d *deadline, t time.Time) {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.t = t
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() {
			h.mu.Lock()
			h.cond.Broadcast()
			h.mu.Unlock()
		})
	}
	h.cond.Broadcast()
}

func expired(d *deadline) bool { return !d.t.IsZero() && !time.Now().Before(d.t) }

func (h *half) read(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		switch {
		case h.readDone:
			return 0, net.ErrClosed
		case len(h.buf) > 0:
			n := copy(p, h.buf)
			h.buf = h.buf[n:]
			if len(h.buf) == 0 {
				h.buf = nil
			}
			h.cond.Broadcast()
			return n, nil
		case h.writeDone:
			return 0, io.EOF
		case expired(&h.rdl):
			return 0, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
}

func (h *half) write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := 0
	for {
		switch {
		case h.writeDone:
			return total, net.ErrClosed
		case h.readDone:
			return total, io.ErrClosedPipe
		case total == len(p):
			return total, nil
		case len(h.buf) < h.capacity:
			n := min(h.capacity-len(h.buf), len(p)-total)
			h.buf = append(h.buf, p[total:total+n]...)
			total += n
			h.cond.Broadcast()
			continue
		case expired(&h.wdl):
			return total, os.ErrDeadlineExceeded
		}
		h.cond.Wait()
	}
}

// pipeEnd is one end of a pipe; it implements net.Conn.
type pipeEnd struct {
	in, out       *half
	local, remote net.Addr
}

func (e *pipeEnd) Read(p []byte) (int, error)  { return e.in.read(p) }
func (e *pipeEnd) Write(p []byte) (int, error) { return e.out.write(p) }

// Close makes the peer read io.EOF after the buffered data and fails the
// peer's writes, as closing a TCP socket does.
func (e *pipeEnd) Close() error {
	for _, h := range []*half{e.in, e.out} {
		h.mu.Lock()
		if h == e.in {
			h.readDone = true
			h.buf = nil
		} else {
			h.writeDone = true
		}
		h.set(&h.rdl, time.Time{})
		h.set(&h.wdl, time.Time{})
		h.mu.Unlock()
	}
	return nil
}

// closeWrite makes the peer read io.EOF after the buffered data; this end
// can still read.
func (e *pipeEnd) closeWrite() {
	e.out.mu.Lock()
	e.out.writeDone = true
	e.out.cond.Broadcast()
	e.out.mu.Unlock()
}

func (e *pipeEnd) LocalAddr() net.Addr  { return e.local }
func (e *pipeEnd) RemoteAddr() net.Addr { return e.remote }

func (e *pipeEnd) SetDeadline(t time.Time) error {
	_ = e.SetReadDeadline(t)
	return e.SetWriteDeadline(t)
}

func (e *pipeEnd) SetReadDeadline(t time.Time) error {
	e.in.mu.Lock()
	defer e.in.mu.Unlock()
	if !e.in.readDone {
		e.in.set(&e.in.rdl, t)
	}
	return nil
}

func (e *pipeEnd) SetWriteDeadline(t time.Time) error {
	e.out.mu.Lock()
	defer e.out.mu.Unlock()
	if !e.out.writeDone {
		e.out.set(&e.out.wdl, t)
	}
	return nil
}
