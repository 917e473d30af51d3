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
// deadline, and it has no notion of progress. Write therefore runs it in
// attempts, each with a deadline at most stallCheck ahead (sooner if the
// caller's deadline or the stall is). An attempt that times out having sent
// some bytes is progress; once none has been seen for the stall timeout,
// Write fails with muxer.ErrWriteStalled. Progress is timed when an attempt
// returns, at most stallCheck after the bytes moved, so the failure comes
// between the stall timeout and the stall timeout plus stallCheck after the
// last byte moved (TestWriteStallAfterProgress).
type stream struct {
	ys   *yamux.Stream
	sess *session

	stall      time.Duration // fail a write after this long without progress
	stallCheck time.Duration // attempt length: stall/4

	// wsem serializes Writes, so that concurrent writes do not interleave.
	// A channel, not a mutex: a Write may hold it for a stall timeout, and
	// a goroutine waiting on a channel is durably blocked in a synctest
	// bubble.
	wsem       chan struct{}
	progressAt time.Time // when a Write last made progress; guarded by wsem

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

var _ muxer.Stream = (*stream)(nil)

// wrap adapts ys, which the session has admitted.
func (s *session) wrap(ys *yamux.Stream) *stream {
	return &stream{
		ys:         ys,
		sess:       s,
		stall:      s.cfg.WriteStallTimeout,
		stallCheck: s.cfg.WriteStallTimeout / 4,
		wsem:       make(chan struct{}, 1),
		rsem:       make(chan struct{}, 1),
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
		if user := st.userDeadline(); !user.IsZero() && !now.Before(user) {
			return total, &muxer.Error{Op: "write", Kind: os.ErrDeadlineExceeded}
		}
		if n > 0 {
			lastProgress = now
		} else if now.Sub(lastProgress) >= st.stall {
			return total, &muxer.Error{Op: "write", Kind: muxer.ErrWriteStalled,
				Err: fmt.Errorf("no bytes accepted for %v (peer granted no flow-control credit or the session could not send)", st.stall)}
		}
	}
}

// beginAttempt arms go-yamux's write deadline for one attempt starting at
// now: stallCheck ahead, but no later than stallAt (when the write will have
// made no progress for the stall timeout) or the caller's deadline, which it
// returns. An armed deadline at least half an attempt ahead and no later
// than that is reused: arming one costs a timer.
func (st *stream) beginAttempt(now, stallAt time.Time) (user time.Time) {
	st.dmu.Lock()
	defer st.dmu.Unlock()
	st.writing = true
	dl := now.Add(st.stallCheck)
	if stallAt.Before(dl) {
		dl = stallAt
	}
	if !st.userWD.IsZero() && st.userWD.Before(dl) {
		dl = st.userWD
	}
	if !st.attemptWD.IsZero() && st.attemptWD.After(now.Add(st.stallCheck/2)) && !st.attemptWD.After(dl) {
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

func (st *stream) Reset() error {
	defer st.end(bothEnded)
	st.readClosed.Store(true)
	if !st.writeClosed.Swap(true) {
		st.wakeWriter()
	}
	return st.ys.Reset() // never fails
}

func (st *stream) LocalAddr() net.Addr  { return st.ys.LocalAddr() }
func (st *stream) RemoteAddr() net.Addr { return st.ys.RemoteAddr() }
