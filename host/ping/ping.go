package ping

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/concordp2p/concord/host/internal/watchdog"
	"io"
	"time"
)

// Specification constants (ping/ping.md).
const (
	// ID is the protocol ID negotiated with multistream-select.
	ID = "/ipfs/ping/1.0.0"
	// Size is the length of every payload, in bytes.
	Size = 32
)

// Implementation constants.
const (
	// DefaultIdleTimeout is how long a Server waits for the next payload
	// when Server.IdleTimeout is zero.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultTimeout bounds one round trip of a Pinger whose Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultInterval separates the pings of a Pinger whose Interval is zero.
	DefaultInterval = time.Second
)

var (
	// ErrMismatch means the echo differs from the payload sent.
	ErrMismatch = errors.New("ping: echo does not match the payload")
	// ErrTruncated means the stream ended inside a 32-byte payload.
	ErrTruncated = errors.New("ping: stream ended inside a payload")
	// ErrIdleTimeout means the server closed a stream on which no complete
	// payload arrived, and was echoed, within its idle timeout.
	ErrIdleTimeout = errors.New("ping: stream idle too long")
)

// Stream is what the protocol needs of a negotiated stream. muxer.Stream
// and *net.TCPConn satisfy it. A server aborts a stream that also has a
// Reset() error method, as muxer.Stream does, with Reset rather than Close:
// the peer learns at once, even while it is still writing.
type Stream interface {
	io.Reader
	io.Writer
	CloseWrite() error
	Close() error
	SetDeadline(time.Time) error
}

// Server answers pings. The zero value is ready to use, with the defaults.
type Server struct {
	// IdleTimeout is how long the server waits for the next complete
	// payload and the writing of its echo, before closing the stream.
	// Zero or negative means DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Serve is Server{}.Serve: it answers pings with the default limits.
func Serve(ctx context.Context, s Stream) error { return Server{}.Serve(ctx, s) }

// Serve echoes each 32-byte payload read from s until the client closes its
// write side, then closes s and returns nil. It closes s on every path:
// after ErrIdleTimeout, after ErrTruncated or another error (resetting s
// when it has a Reset method), and when ctx ends, returning context.Cause.
func (srv Server) Serve(ctx context.Context, s Stream) (err error) {
	idle := srv.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	w := watchdog.Watch(ctx, s, idle)
	defer func() { err = w.ReleaseServer(ctx, err, ErrIdleTimeout) }()
	var buf [Size]byte
	for {
		// One deadline for the whole payload and its echo, so that a
		// client trickling bytes cannot hold the stream open.
		w.Arm()
		if _, err := io.ReadFull(s, buf[:]); err != nil {
			switch {
			case err == io.EOF:
				return nil // the client closed after its last payload
			case err == io.ErrUnexpectedEOF:
				return ErrTruncated
			}
			return fmt.Errorf("ping: reading payload: %w", err)
		}
		if _, err := s.Write(buf[:]); err != nil {
			return fmt.Errorf("ping: writing echo: %w", err)
		}
	}
}

// Ping sends one payload of 32 bytes read from random (crypto/rand if nil)
// and returns the time until its echo was read back. An echo that differs
// fails with ErrMismatch. Ping neither closes s nor changes its deadlines,
// except that cancelling ctx sets one in the past.
func Ping(ctx context.Context, s Stream, random io.Reader) (rtt time.Duration, err error) {
	if random == nil {
		random = rand.Reader
	}
	var sent, got [Size]byte
	if _, err := io.ReadFull(random, sent[:]); err != nil {
		return 0, fmt.Errorf("ping: reading random payload: %w", err)
	}
	w := watchdog.Watch(ctx, s, 0)
	defer func() { err = w.Release(ctx, err, ErrIdleTimeout) }()
	start := time.Now()
	if _, err := w.Write(sent[:]); err != nil {
		return 0, fmt.Errorf("ping: writing payload: %w", err)
	}
	if _, err := io.ReadFull(w, got[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: %w", ErrTruncated, err)
		}
		return 0, fmt.Errorf("ping: reading echo: %w", err)
	}
	rtt = time.Since(start)
	if sent != got {
		return 0, ErrMismatch
	}
	return rtt, nil
}

// Pinger pings repeatedly on one stream. The zero value is ready to use:
// pings every second until ctx ends.
type Pinger struct {
	// Count is the number of pings; zero or negative means until ctx ends.
	Count int
	// Interval is the time between the starts of consecutive pings. Zero
	// or negative means DefaultInterval. A ping slower than Interval is
	// followed at once by the next.
	Interval time.Duration
	// Timeout bounds each round trip. Zero or negative means
	// DefaultTimeout.
	Timeout time.Duration
	// Random supplies the payloads; nil means crypto/rand.
	Random io.Reader
}

// Stats summarises the round trips of a Pinger.
type Stats struct {
	Count    int           // pings answered
	Min, Max time.Duration // zero when Count is
	Total    time.Duration // sum of the round-trip times
}

// Avg is the mean round-trip time, zero when no ping was answered.
func (st Stats) Avg() time.Duration {
	if st.Count == 0 {
		return 0
	}
	return st.Total / time.Duration(st.Count)
}

func (st *Stats) add(rtt time.Duration) {
	if st.Count == 0 || rtt < st.Min {
		st.Min = rtt
	}
	st.Max = max(st.Max, rtt)
	st.Total += rtt
	st.Count++
}

// Run pings on s, calling each (if not nil) with the sequence number
// (from 1) and round-trip time of every answered ping, from Run's
// goroutine. After Count pings it closes its write side, as the spec asks,
// and returns the statistics and nil. It stops at the first failed ping
// (the stream is then unusable), returning that error, and when ctx ends,
// returning context.Cause(ctx); Stats then cover the pings answered.
func (p Pinger) Run(ctx context.Context, s Stream, each func(seq int, rtt time.Duration)) (Stats, error) {
	interval, timeout := p.Interval, p.Timeout
	if interval <= 0 {
		interval = DefaultInterval
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var st Stats
	timer := time.NewTimer(0)
	defer timer.Stop()
	for seq := 1; p.Count <= 0 || seq <= p.Count; seq++ {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return st, context.Cause(ctx)
		}
		timer.Reset(interval)
		rtt, err := p.ping(ctx, s, timeout)
		if err != nil {
			return st, fmt.Errorf("ping %d: %w", seq, err)
		}
		st.add(rtt)
		if each != nil {
			each(seq, rtt)
		}
	}
	if err := s.CloseWrite(); err != nil {
		return st, fmt.Errorf("ping: closing write side: %w", err)
	}
	return st, nil
}

func (p Pinger) ping(ctx context.Context, s Stream, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no echo within %v: %w", timeout, context.DeadlineExceeded))
	defer cancel()
	return Ping(ctx, s, p.Random)
}
