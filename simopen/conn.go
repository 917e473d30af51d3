package simopen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// withPrefix returns conn itself when rest is empty, else a conn whose
// Reads yield rest before reading from conn.
func withPrefix(conn net.Conn, rest []byte) net.Conn {
	if len(rest) == 0 {
		return conn
	}
	return &prefixConn{Conn: conn, buf: append([]byte(nil), rest...)}
}

// prefixConn yields bytes read past the last token before reading on.
type prefixConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte // guarded by mu
}

func (c *prefixConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	if len(c.buf) > 0 {
		n := copy(b, c.buf)
		c.buf = c.buf[n:]
		c.mu.Unlock()
		return n, nil
	}
	c.mu.Unlock()
	return c.Conn.Read(b)
}

// lazyConn is the conn of a pipelined initiator (Result.Pipelined). Its
// first Write sends the held "initiator" and proposal tokens in the same
// Write as the handshake bytes. Its first Read (which sends the held bytes
// first if no Write has) reads and checks the peer's "responder" and echo
// before passing data through; a mismatch fails that Read and every later
// one with the machine's typed error, wrapped in a *PipelineError. These
// checks run under whatever deadline the caller set on the conn.
type lazyConn struct {
	net.Conn

	wmu  sync.Mutex
	held []byte // guarded by wmu; nil once sent

	rmu  sync.Mutex
	m    *machine // guarded by rmu
	dec  *decoder // guarded by rmu; nil once the checks passed and its rest is drained
	rerr error    // guarded by rmu; sticky
}

func (c *lazyConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.held == nil {
		return c.Conn.Write(b)
	}
	h := c.held
	c.held = nil
	n, err := c.Conn.Write(append(h, b...))
	n -= len(h)
	if n < 0 {
		n = 0
	}
	if err != nil {
		return n, &PipelineError{fmt.Errorf("simopen: writing the pipelined proposal: %w", err)}
	}
	return n, nil
}

// flush sends the held tokens alone, for a Read that comes first.
func (c *lazyConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.held == nil {
		return nil
	}
	h := c.held
	c.held = nil
	if _, err := c.Conn.Write(h); err != nil {
		return &PipelineError{fmt.Errorf("simopen: writing the pipelined proposal: %w", err)}
	}
	return nil
}

func (c *lazyConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return 0, c.rerr
	}
	if c.dec == nil {
		return c.Conn.Read(b)
	}
	if c.m.state != stateDone {
		if err := c.flush(); err != nil {
			c.rerr = err
			return 0, err
		}
		if err := c.confirm(); err != nil {
			c.rerr = &PipelineError{err}
			return 0, c.rerr
		}
	}
	rest := c.dec.rest()
	if len(rest) == 0 {
		c.dec = nil
		return c.Conn.Read(b)
	}
	n := copy(b, rest)
	c.dec.buf = rest[n:]
	return n, nil
}

// confirm feeds the machine until it is done.
func (c *lazyConn) confirm() error {
	var buf [readChunk]byte
	for c.m.state != stateDone {
		tok, ok, err := c.dec.next()
		if err != nil {
			return c.m.fail(fmt.Errorf("%w (in state %s)", err, c.m.state))
		}
		if ok {
			if err := c.m.receive(tok); err != nil {
				return err
			}
			if len(c.m.writes) > 0 {
				// The states after the election's pipelined write never
				// emit; a write here would be a bug.
				panic("simopen: pipelined confirmation produced a write")
			}
			continue
		}
		n, err := c.Conn.Read(buf[:])
		c.dec.push(buf[:n])
		switch {
		case err == nil || n > 0:
		case errors.Is(err, io.EOF):
			return c.m.eof()
		default:
			return fmt.Errorf("simopen: reading the pipelined confirmation in state %s: %w", c.m.state, err)
		}
	}
	return nil
}
