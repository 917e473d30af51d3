package yamux

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/concordp2p/concord/muxer"
)

// aLongTimeAgo is a deadline in the past, used to wake a blocked Write.
var aLongTimeAgo = time.Unix(1, 0)

// stream adapts *yamux.Stream to muxer.Stream. It adds the write-stall
// timeout, serializes Reads and Writes, and tells its session when it ends.
//
// # Write progress
//
// go-yamux's Write blocks while the stream has no send window (the peer
// stopped reading) or the session's send queue is full, until the write
// deadline, and it has no notion of progress. Write therefore arms that
// deadline at the moment the write will have made no progress for the
// stall timeout (sooner if the caller's deadline is) and, when it passes,
// finds out when the bytes go-yamux took last moved: a Write that returns
// has just had its last bytes queued; one that times out having queued
// some asks the guard (guardedConn.lastSent) when the stream's data last
// left for the connection, which, once all of it has, is no earlier than
// the last byte was queued. If that is less than the stall timeout ago,
// Write re-arms the deadline from there and goes on; else it fails with
// muxer.ErrWriteStalled. So the failure comes at the stall timeout after
// the last progress, late only by as long as the last bytes queued waited
// in go-yamux's send queue (none on a session that is not backlogged;
// TestWriteStallAt). A write that keeps moving re-arms once per stall
// timeout at most; a write that does not block arms none, reusing the
// deadline armed before (beginAttempt).
type stream struct {
	ys   *yamux.Stream
	sess *session

	stall time.Duration // fail a write after this long without progress

	// wsem serializes Writes, so that concurrent writes do not interleave.
	// A channel, not a mutex: a Write may hold it for a stall timeout, and
	// a goroutine waiting on a channel is durably blocked in a synctest
	// bubble.
	wsem       chan struct{}
	progressAt time.Time // when a Write last made progress; guarded by wsem
	queued     uint64    // bytes go-yamux has taken from Writes; guarded by wsem

	// rsem serializes Reads: go-yamux v5.1.0's Stream.Read is not safe
	// for concurrent use. Readers wait on recvNotifyCh, which holds one
	// notification, so of two readers waiting when the peer's FIN arrives
	// one wakes and the other waits forever (TestConcurrentReads); and its
	// window update (sendWindowUpdate) reads and writes recvWindow and
	// epochStart without a lock.
	rsem chan struct{}

	dmu       sync.Mutex // guards the fields below and calls to ys.SetWriteDeadline
	userWD    time.Time  // the caller's write deadline; zero: none
	attemptWD time.Time  // deadline of the attempt in progress, or the last one; zero: none set
	writing   bool       // an attempt is in progress

	readClosed  atomic.Bool   // CloseRead, Close or Reset was called
	writeClosed atomic.Bool   // CloseWrite, Close or Reset was called
	ended       atomic.Uint32 // readEnded|writeEnded: the directions finished on this side
}

// The directions of a stream, for stream.end.
const (
	readEnded  = 1 << iota // Read returned EOF or an error, or CloseRead
	writeEnded             // CloseWrite, or Write failed for good
	bothEnded  = readEnded | writeEnded
)

var _ muxer.CodedStream = (*stream)(nil)

// wrap adapts ys, which the session has admitted.
func (s *session) wrap(ys *yamux.Stream) *stream {
	return &stream{
		ys:    ys,
		sess:  s,
		stall: s.cfg.WriteStallTimeout,
		wsem:  make(chan struct{}, 1),
		rsem:  make(chan struct{}, 1),
	}
}

// end records that directions have finished; the first time both have,
// the stream stops counting for Shutdown. It mirrors when go-yamux forgets
// a stream: both halves closed or either reset.
func (st *stream) end(directions uint32) {
	if old := st.ended.Or(directions); old != bothEnded && old|directions == bothEnded {
		st.sess.release()
	}
}

// endOnError ends the stream for an error of op: a reset or a closed
// session ends both directions, a deadline or a stall neither.
func (st *stream) endOnError(err error, directions uint32) {
	switch {
	case err == nil:
	case errors.Is(err, muxer.ErrStreamReset), errors.Is(err, muxer.ErrSessionClosed):
		st.end(bothEnded)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, muxer.ErrWriteStalled):
	default:
		st.end(directions)
	}
}

func (st *stream) Read(b []byte) (int, error) {
	if st.readClosed.Load() {
		return 0, &muxer.Error{Op: "read", Kind: net.ErrClosed}
	}
	st.rsem <- struct{}{}
	n, err := st.ys.Read(b)
	<-st.rsem
	if err != nil && st.readClosed.Load() {
		// go-yamux reports a local CloseRead as a reset
		return n, &muxer.Error{Op: "read", Kind: net.ErrClosed}
	}
	err = st.streamErr("read", err)
	st.endOnError(err, readEnded)
	return n, err
}

func (st *stream) Write(b []byte) (int, error) {
	if st.writeClosed.Load() {
		return 0, &muxer.Error{Op: "write", Kind: net.ErrClosed}
	}
	if len(b) == 0 {
		return 0, nil
	}
	called := time.Now()
	st.wsem <- struct{}{}
	defer func() { <-st.wsem }()

	// A Write queued behind a stalled one has been waiting too: its clock
	// runs from its call or from the stream's last progress, whichever is
	// later, so it fails one stall timeout after its call at the latest.
	total := 0
	lastProgress := called
	if st.progressAt.After(lastProgress) {
		lastProgress = st.progressAt
	}
	defer func() { st.progressAt = lastProgress }()
	for {
		now := time.Now()
		if user := st.beginAttempt(now, lastProgress.Add(st.stall)); !user.IsZero() && !now.Before(user) {
			st.endAttempt()
			return total, &muxer.Error{Op: "write", Kind: os.ErrDeadlineExceeded}
		}
		n, err := st.ys.Write(b[total:])
		st.endAttempt()
		total += n
		st.queued += uint64(n)
		if err == nil {
			lastProgress = time.Now()
			return total, nil
		}
		if st.writeClosed.Load() {
			return total, &muxer.Error{Op: "write", Kind: net.ErrClosed}
		}
		if !errors.Is(err, yamux.ErrTimeout) {
			err = st.streamErr("write", err)
			st.endOnError(err, writeEnded)
			return total, err
		}
		// The attempt's deadline passed: the caller's, or ours.
		now = time.Now()
		if n > 0 {
			lastProgress = st.progressTime(lastProgress, now)
		}
		if user := st.userDeadline(); !user.IsZero() && !now.Before(user) {
			return total, &muxer.Error{Op: "write", Kind: os.ErrDeadlineExceeded}
		}
		if now.Sub(lastProgress) >= st.stall {
			return total, &muxer.Error{Op: "write", Kind: muxer.ErrWriteStalled,
				Err: fmt.Errorf("no bytes accepted for %v (peer granted no flow-control credit or the session could not send)", st.stall)}
		}
	}
}

// progressTime is when an attempt that timed out at now, having had some
// bytes queued, last made progress, given the progress before it (see Write
// progress): when the stream's data last left for the connection if all of
// it has, else now, as some of it is still queued.
func (st *stream) progressTime(before, now time.Time) time.Time {
	at, ok := st.sess.conn.lastSent(st.ys.StreamID(), st.queued)
	if !ok || at.After(now) {
		return now
	}
	if at.Before(before) { // cannot be: the bytes were queued after before
		return before
	}
	return at
}

// beginAttempt arms go-yamux's write deadline for an attempt starting at
// now: at stallAt (when the write will have made no progress for the stall
// timeout), or at the caller's deadline if sooner, which it returns. An
// armed deadline more than half a stall timeout ahead and no later than
// that is reused, as arming one costs a timer: if it passes first, the
// attempt ends early and the next one arms the right one.
func (st *stream) beginAttempt(now, stallAt time.Time) (user time.Time) {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	st.writing = true
	dl := stallAt
	if !st.userWD.IsZero() && st.userWD.Before(dl) {
		dl = st.userWD
	}
	if !st.attemptWD.IsZero() && st.attemptWD.After(now.Add(st.stall/2)) && !st.attemptWD.After(dl) {
		return st.userWD
	}
	st.attemptWD = dl
	_ = st.ys.SetWriteDeadline(dl) // never fails
	return st.userWD
}

func (st *stream) endAttempt() {
	st.dmu.Lock()
	st.writing = false
	st.dmu.Unlock()
}

func (st *stream) userDeadline() time.Time {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	return st.userWD
}

func (st *stream) SetDeadline(t time.Time) error {
	_ = st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

func (st *stream) SetReadDeadline(t time.Time) error {
	return st.ys.SetReadDeadline(t) // never fails
}

// SetWriteDeadline records the caller's deadline; a Write in progress
// honours it at once if it is sooner than the attempt's own deadline.
func (st *stream) SetWriteDeadline(t time.Time) error {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	st.userWD = t
	if !t.IsZero() && (st.attemptWD.IsZero() || t.Before(st.attemptWD)) {
		st.attemptWD = t
		_ = st.ys.SetWriteDeadline(t)
	} else if !st.writing {
		st.attemptWD = time.Time{} // the next attempt arms its own
	}
	return nil
}

// wakeWriter makes a Write blocked in go-yamux return at once; it then sees
// writeClosed. go-yamux wakes a writer waiting for window itself, but not
// one waiting for room in the send queue.
func (st *stream) wakeWriter() {
	st.dmu.Lock()
	st.attemptWD = aLongTimeAgo
	_ = st.ys.SetWriteDeadline(aLongTimeAgo)
	st.dmu.Unlock()
}

func (st *stream) CloseWrite() error {
	defer st.end(writeEnded)
	if st.writeClosed.Swap(true) {
		return nil
	}
	st.wakeWriter()
	return st.closeErr("close write", st.ys.CloseWrite())
}

func (st *stream) CloseRead() error {
	defer st.end(readEnded)
	st.readClosed.Store(true)
	return st.ys.CloseRead() // never fails
}

// Close closes both directions: the peer reads EOF after the data written
// so far. It returns an error when the stream had been reset or the session
// closed, in which case data written before may not have reached the peer.
func (st *stream) Close() error {
	defer st.end(bothEnded)
	st.readClosed.Store(true)
	_ = st.ys.CloseRead()
	if st.writeClosed.Swap(true) {
		return nil
	}
	st.wakeWriter()
	return st.closeErr("close", st.ys.CloseWrite())
}

func (st *stream) closeErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return st.streamErr(op, err)
}

func (st *stream) Reset() error { return st.ResetWithError(0) }

// ResetWithError resets with code in the RST frame.
func (st *stream) ResetWithError(code uint32) error {
	defer st.end(bothEnded)
	st.readClosed.Store(true)
	if !st.writeClosed.Swap(true) {
		st.wakeWriter()
	}
	return st.ys.ResetWithError(code) // never fails
}

func (st *stream) LocalAddr() net.Addr  { return st.ys.LocalAddr() }
func (st *stream) RemoteAddr() net.Addr { return st.ys.RemoteAddr() }
