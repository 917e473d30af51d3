package yamux

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
)

// These tests run in synctest bubbles: go-yamux's timers (keepalive,
// ping timeout, deadlines) and the pipe's deadlines use the bubble's fake
// clock, every goroutine they start belongs to the bubble, and
// synctest.Test fails if any of them is still blocked when the test ends.

// TestKeepaliveDetectsSilentPeer: a peer that reads but never answers is
// detected within KeepAliveInterval + PingTimeout, with the default and a
// short configuration.
func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	for _, tt := range []struct {
		name           string
		cfg            Config
		interval, ping time.Duration
	}{
		{"defaults", Config{}, DefaultKeepAliveInterval, DefaultPingTimeout},
		{"1s+1s", Config{KeepAliveInterval: time.Second, PingTimeout: time.Second}, time.Second, time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				a, raw := newPipe(pipeCapacity)
				s := mustSession(t, tt.cfg, a, network.RoleInitiator)
				go func() { _, _ = io.Copy(io.Discard, raw) }() // silent: reads, never writes
				start := time.Now()
				<-s.Done()
				elapsed := time.Since(start)
				t.Logf("silent peer detected after %v", elapsed)
				if elapsed < tt.interval || elapsed > tt.interval+tt.ping {
					t.Errorf("silent peer detected after %v, want within [%v, %v]", elapsed, tt.interval, tt.interval+tt.ping)
				}
				if err := s.Err(); !errors.Is(err, muxer.ErrKeepaliveTimeout) || !errors.Is(err, muxer.ErrSessionClosed) {
					t.Errorf("Err() = %v, want ErrSessionClosed caused by ErrKeepaliveTimeout", err)
				}
				raw.Close()
			})
		})
	}
}

// TestKeepaliveDetectsPeerNotReading: a peer that neither reads nor writes
// (its receive buffer fills up) is detected within the same bound, either
// by the keepalive or by the connection write timeout.
func TestKeepaliveDetectsPeerNotReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, raw := newPipe(16 << 10)
		s := mustSession(t, Config{}, a, network.RoleInitiator)
		st, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() { _, _ = st.Write(make([]byte, 1<<20)) }() // fills the pipe
		<-s.Done()
		elapsed := time.Since(start)
		t.Logf("peer not reading detected after %v: %v", elapsed, s.Err())
		bound := DefaultKeepAliveInterval + DefaultPingTimeout
		if elapsed > bound {
			t.Errorf("peer not reading detected after %v, want within %v", elapsed, bound)
		}
		if err := s.Err(); !errors.Is(err, muxer.ErrKeepaliveTimeout) && !errors.Is(err, muxer.ErrConnWriteTimeout) {
			t.Errorf("Err() = %v, want ErrKeepaliveTimeout or ErrConnWriteTimeout", err)
		}
		raw.Close()
	})
}

// TestKeepaliveKeepsIdleSessionOpen: two live but idle sessions answer
// each other's keepalives for many intervals and stay open.
func TestKeepaliveKeepsIdleSessionOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		time.Sleep(30 * DefaultKeepAliveInterval)
		if c.IsClosed() || s.IsClosed() {
			t.Fatalf("idle live sessions closed: initiator %v, responder %v", c.Err(), s.Err())
		}
		c.Close()
		s.Close()
	})
}

// stallSlack is how late a stalled Write may fail in these tests: by how
// long its last bytes waited in go-yamux's send queue, which over the
// in-memory pipe, with room to spare, is no time at all.
const stallSlack = 0

// stalledWrite writes size bytes on a stream the peer accepted but never
// reads and returns what Write returned and how long it took.
func stalledWrite(t *testing.T, cfg Config, size int) (n int, err error, took time.Duration) {
	c, s := newSessions(t, cfg, Config{})
	a, _ := openPair(t, c, s) // the peer never reads
	start := time.Now()
	n, err = a.Write(make([]byte, size))
	took = time.Since(start)
	c.Close()
	s.Close()
	return n, err, took
}

// TestWriteStallTimeout: a write to a stream whose peer stopped reading
// fails once it has made no progress for the stall timeout, having sent
// exactly the initial window.
func TestWriteStallTimeout(t *testing.T) {
	for _, stall := range []time.Duration{0, 2 * time.Second} {
		want := stall
		if want == 0 {
			want = DefaultWriteStallTimeout
		}
		t.Run(want.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, err, took := stalledWrite(t, Config{WriteStallTimeout: stall}, 1<<20)
				if !errors.Is(err, muxer.ErrWriteStalled) {
					t.Fatalf("Write: got %v, want ErrWriteStalled", err)
				}
				var nerr interface{ Timeout() bool }
				if !errors.As(err, &nerr) || !nerr.Timeout() {
					t.Errorf("Write error %v: Timeout() = false, want true", err)
				}
				if n != initialStreamWindow {
					t.Errorf("Write sent %d bytes, want the initial window %d", n, initialStreamWindow)
				}
				// the window was used up at once, so the stall began at the start
				if took < want || took > want+stallSlack {
					t.Errorf("Write failed after %v, want within [%v, %v]", took, want, want+stallSlack)
				}
			})
		})
	}
}

// TestWriteStallAfterProgress: the stall clock starts at the last
// progress, not at the start of the write: the peer reads for a while and
// then stops.
func TestWriteStallAfterProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, b := openPair(t, c, s)
		var lastRead time.Time
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, 128<<10)
			for range 4 { // 512 KiB over 40 s, then nothing
				time.Sleep(10 * time.Second)
				if _, err := io.ReadFull(b, buf); err != nil {
					t.Errorf("reader: %v", err)
					return
				}
				lastRead = time.Now()
			}
		}()
		start := time.Now()
		_, err := a.Write(make([]byte, 4<<20))
		failed := time.Now()
		<-readerDone
		if !errors.Is(err, muxer.ErrWriteStalled) {
			t.Fatalf("Write: got %v, want ErrWriteStalled", err)
		}
		// the last credit left the reader at lastRead and arrived at once
		silence := failed.Sub(lastRead)
		t.Logf("write failed %v after it began, %v after the last credit", failed.Sub(start), silence)
		if stall := DefaultWriteStallTimeout; silence < stall || silence > stall+stallSlack {
			t.Errorf("Write failed %v after the last progress, want within [%v, %v]", silence, stall, stall+stallSlack)
		}
		c.Close()
		s.Close()
	})
}

// TestWriteStallAt: a write fails exactly one stall timeout after its last
// progress (issue 14: it used to fail up to a quarter of it late), with the
// default and a short stall timeout, whether the stall begins at once (the
// window is used up by the first frames) or after the peer has read for a
// while, and whatever the caller's own, later, deadline.
func TestWriteStallAt(t *testing.T) {
	for _, tt := range []struct {
		name     string
		stall    time.Duration // Config.WriteStallTimeout
		reads    int           // reads of 128 KiB by the peer before it stops
		deadline time.Duration // the caller's write deadline from the start; 0: none
	}{
		{"default", 0, 0, 0},
		{"2s", 2 * time.Second, 0, 0},
		{"default/after-progress", 0, 3, 0},
		{"2s/after-progress", 2 * time.Second, 5, 0},
		{"2s/late-deadline", 2 * time.Second, 2, time.Hour},
		{"default/late-deadline", 0, 0, 31 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stall := tt.stall
				if stall == 0 {
					stall = DefaultWriteStallTimeout
				}
				c, s := newSessions(t, Config{WriteStallTimeout: tt.stall}, Config{})
				a, b := openPair(t, c, s)
				start := time.Now()
				if tt.deadline > 0 {
					_ = a.SetWriteDeadline(start.Add(tt.deadline))
				}
				// the peer reads every stall*3/4, then stops: each read
				// sends credit at once, and the write's bytes move then
				lastProgress := start
				readerDone := make(chan struct{})
				go func() {
					defer close(readerDone)
					buf := make([]byte, 128<<10)
					for range tt.reads {
						time.Sleep(stall * 3 / 4)
						if _, err := io.ReadFull(b, buf); err != nil {
							t.Errorf("reader: %v", err)
							return
						}
						lastProgress = time.Now()
					}
				}()
				n, err := a.Write(make([]byte, 4<<20))
				failed := time.Now()
				<-readerDone
				if !errors.Is(err, muxer.ErrWriteStalled) {
					t.Fatalf("Write: got %v, want ErrWriteStalled", err)
				}
				if want := initialStreamWindow + tt.reads*128<<10; n != want {
					t.Errorf("Write sent %d bytes, want %d", n, want)
				}
				silence := failed.Sub(lastProgress)
				t.Logf("write failed %v after it began, %v after its last progress", failed.Sub(start), silence)
				if silence < stall || silence > stall+stallSlack {
					t.Errorf("Write failed %v after its last progress, want within [%v, %v]", silence, stall, stall+stallSlack)
				}
				c.Close()
				s.Close()
			})
		})
	}
}

// TestWriteDeadlineBeforeStall: a caller's deadline sooner than the stall
// timeout wins and is reported as a deadline, not a stall.
func TestWriteDeadlineBeforeStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, _ := openPair(t, c, s)
		_ = a.SetWriteDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err := a.Write(make([]byte, 1<<20))
		if took := time.Since(start); took != 5*time.Second {
			t.Errorf("Write returned after %v, want the 5s deadline", took)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, muxer.ErrWriteStalled) {
			t.Errorf("Write: got %v, want os.ErrDeadlineExceeded", err)
		}
		c.Close()
		s.Close()
	})
}

// TestSlowButProgressingWrite: a write that keeps progressing, however
// slowly, does not fail even though it lasts many stall timeouts. The
// peer reads 128 KiB every 25 s, so credit arrives every 25 s (< 30 s).
func TestSlowButProgressingWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, b := openPair(t, c, s)
		const size = 2 << 20
		readerDone := make(chan struct{})
		go func() {
			defer close(readerDone)
			buf := make([]byte, 128<<10)
			for read := 0; read < size; read += len(buf) {
				time.Sleep(25 * time.Second)
				if _, err := io.ReadFull(b, buf); err != nil {
					t.Errorf("slow reader: %v", err)
					return
				}
			}
		}()
		start := time.Now()
		n, err := a.Write(make([]byte, size))
		took := time.Since(start)
		if err != nil || n != size {
			t.Fatalf("slow write: got %d, %v after %v; want %d, nil", n, err, took, size)
		}
		t.Logf("slow write of %d bytes took %v", size, took)
		if took < 4*DefaultWriteStallTimeout {
			t.Errorf("slow write took %v; the test needs it to outlast several stall timeouts", took)
		}
		<-readerDone
		c.Close()
		s.Close()
	})
}

// TestBlockedStreamDoesNotBlockOthers: while one stream is stalled because
// the peer stopped reading it, and while the peer's own writes on a stream
// this side does not read are pending, other streams carry data both ways,
// new streams open, and pings (the session's control traffic) are
// answered; the stalled write fails alone and the session stays open.
func TestBlockedStreamDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		stalled, _ := openPair(t, c, s)      // s never reads it
		_, unread := openPair(t, c, s)       // c never reads it
		go unread.Write(make([]byte, 1<<20)) // fills c's receive window for it

		stallErr := make(chan error, 1)
		go func() {
			_, err := stalled.Write(make([]byte, 1<<20))
			stallErr <- err
		}()

		for i := range 10 {
			time.Sleep(2 * time.Second) // well into the stall, before it fails
			synctest.Wait()
			if len(stallErr) > 0 {
				t.Fatalf("round %d: stalled write ended early: %v", i, <-stallErr)
			}
			x, y := openPair(t, c, s)
			msg := []byte{byte(i), 1, 2, 3}
			if _, err := x.Write(msg); err != nil {
				t.Fatalf("round %d: Write on another stream: %v", i, err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(y, got); err != nil {
				t.Fatalf("round %d: Read on another stream: %v", i, err)
			}
			if _, err := y.Write(got); err != nil {
				t.Fatalf("round %d: echo Write: %v", i, err)
			}
			if _, err := io.ReadFull(x, got); err != nil {
				t.Fatalf("round %d: echo Read: %v", i, err)
			}
			x.Close()
			y.Close()
			for _, sess := range []*session{c, s} {
				if _, err := sess.Ping(context.Background()); err != nil {
					t.Fatalf("round %d: Ping during the stall: %v", i, err)
				}
			}
		}
		if err := <-stallErr; !errors.Is(err, muxer.ErrWriteStalled) {
			t.Errorf("stalled write: got %v, want ErrWriteStalled", err)
		}
		if c.IsClosed() || s.IsClosed() {
			t.Errorf("a stalled stream closed the session: %v, %v", c.Err(), s.Err())
		}
		c.Close()
		s.Close()
	})
}

// TestQueuedWriteStalls: a Write queued behind a stalled Write on the same
// stream fails one stall timeout after its own call, not after the first
// Write gives up.
func TestQueuedWriteStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, _ := openPair(t, c, s)
		first := make(chan error, 1)
		go func() {
			_, err := a.Write(make([]byte, 1<<20)) // uses up the window, then stalls
			first <- err
		}()
		time.Sleep(10 * time.Second)
		start := time.Now()
		_, err := a.Write([]byte("queued"))
		took := time.Since(start)
		if !errors.Is(err, muxer.ErrWriteStalled) {
			t.Errorf("queued Write: got %v, want ErrWriteStalled", err)
		}
		if stall := DefaultWriteStallTimeout; took > stall+stallSlack {
			t.Errorf("queued Write failed %v after its call, want within %v", took, stall+stallSlack)
		}
		if err := <-first; !errors.Is(err, muxer.ErrWriteStalled) {
			t.Errorf("first Write: got %v, want ErrWriteStalled", err)
		}
		c.Close()
		s.Close()
	})
}
