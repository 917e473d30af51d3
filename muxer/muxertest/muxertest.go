// Package muxertest is a conformance suite for muxer.Muxer
// implementations and for anything that hands out muxer.Sessions (the
// upgrader's connections, for instance): streams both ways, data integrity
// under concurrency, half-close, reset, session close, context
// cancellation, and x/net's nettest.TestConn on streams.
//
// It uses real time and whatever connection the caller provides; tests of
// timers belong to the implementation, under testing/synctest.
package muxertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/concordp2p/concord/muxer"
)

// NewPair returns two connected sessions: the initiator's and the
// responder's ends of one fresh connection. The suite closes both.
type NewPair func() (initiator, responder muxer.Session, err error)

// opTimeout bounds every step of the suite, so that a broken
// implementation fails instead of hanging.
const opTimeout = 20 * time.Second

// Run runs the suite, each check as a subtest with its own pair.
func Run(t *testing.T, newPair NewPair) {
	for _, tc := range []struct {
		name string
		f    func(t *testing.T, c, s muxer.Session)
	}{
		{"OpenAcceptBothWays", testOpenAcceptBothWays},
		{"Integrity", testIntegrity},
		{"CloseWrite", testCloseWrite},
		{"CloseRead", testCloseRead},
		{"Reset", testReset},
		{"SessionClose", testSessionClose},
		{"ContextCancellation", testContextCancellation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := pair(t, newPair)
			tc.f(t, c, s)
		})
	}
	t.Run("StreamConn", func(t *testing.T) {
		nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
			c, s, err := newPair()
			if err != nil {
				return nil, nil, nil, err
			}
			stop = func() {
				c.Close()
				s.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
			defer cancel()
			x, y, err := open(ctx, c, s)
			if err != nil {
				stop()
				return nil, nil, nil, err
			}
			return x, y, stop, nil
		})
	})
}

func pair(t *testing.T, newPair NewPair) (muxer.Session, muxer.Session) {
	t.Helper()
	c, s, err := newPair()
	if err != nil {
		t.Fatalf("new session pair: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

func open(ctx context.Context, from, to muxer.Session) (muxer.Stream, muxer.Stream, error) {
	a, err := from.OpenStream(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OpenStream: %w", err)
	}
	b, err := to.AcceptStream(ctx)
	if err != nil {
		a.Reset()
		return nil, nil, fmt.Errorf("AcceptStream: %w", err)
	}
	return a, b, nil
}

func mustOpen(t *testing.T, from, to muxer.Session) (muxer.Stream, muxer.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	a, b, err := open(ctx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	// a broken implementation fails the test instead of hanging it
	for _, st := range []muxer.Stream{a, b} {
		_ = st.SetDeadline(time.Now().Add(opTimeout))
	}
	return a, b
}

// RandomData is size reproducible pseudo-random bytes.
func RandomData(seed uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

func testOpenAcceptBothWays(t *testing.T, c, s muxer.Session) {
	for _, dir := range []struct {
		name     string
		from, to muxer.Session
	}{{"initiator opens", c, s}, {"responder opens", s, c}} {
		a, b := mustOpen(t, dir.from, dir.to)
		if _, err := a.Write([]byte("ping")); err != nil {
			t.Fatalf("%s: Write: %v", dir.name, err)
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
			t.Fatalf("%s: peer read %q, %v; want %q, nil", dir.name, got, err, "ping")
		}
		if _, err := b.Write([]byte("pong")); err != nil {
			t.Fatalf("%s: peer Write: %v", dir.name, err)
		}
		if _, err := io.ReadFull(a, got); err != nil || string(got) != "pong" {
			t.Fatalf("%s: read %q, %v; want %q, nil", dir.name, got, err, "pong")
		}
		a.Close()
		b.Close()
	}
	// Each side forgets a stream once it has seen the other's FIN.
	deadline := time.Now().Add(opTimeout)
	for c.NumStreams()+s.NumStreams() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := c.NumStreams() + s.NumStreams(); got != 0 {
		t.Errorf("streams open after both ends closed: got %d, want 0", got)
	}
}

// testIntegrity sends different data on several streams at once in both
// directions, in odd-sized writes, and compares SHA-256 sums.
func testIntegrity(t *testing.T, c, s muxer.Session) {
	for _, tt := range []struct {
		streams, size int
	}{{1, 8 << 20}, {8, 1 << 20}} {
		var wg sync.WaitGroup
		for i := range tt.streams {
			a, b := mustOpen(t, c, s)
			for j, ends := range [][2]muxer.Stream{{a, b}, {b, a}} {
				data := RandomData(uint64(2*i+j), tt.size)
				want := sha256.Sum256(data)
				wg.Add(2)
				go func() {
					defer wg.Done()
					for off := 0; off < len(data); {
						n := min(len(data)-off, 1+off%70000)
						if _, err := ends[0].Write(data[off : off+n]); err != nil {
							t.Errorf("%d streams, stream %d: Write: %v", tt.streams, i, err)
							return
						}
						off += n
					}
					if err := ends[0].CloseWrite(); err != nil {
						t.Errorf("%d streams, stream %d: CloseWrite: %v", tt.streams, i, err)
					}
				}()
				go func() {
					defer wg.Done()
					h := sha256.New()
					n, err := io.Copy(h, ends[1])
					if err != nil || n != int64(len(data)) {
						t.Errorf("%d streams, stream %d: read %d bytes, %v; want %d, nil", tt.streams, i, n, err, len(data))
					}
					if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
						t.Errorf("%d streams, stream %d: SHA-256 %x, want %x", tt.streams, i, got, want)
					}
				}()
			}
		}
		wg.Wait()
	}
}

// testCloseWrite: data written before CloseWrite reaches the peer, then
// EOF; the other direction stays usable; writing afterwards fails.
func testCloseWrite(t *testing.T, c, s muxer.Session) {
	a, b := mustOpen(t, c, s)
	defer a.Close()
	defer b.Close()
	data := RandomData(1, 1<<20)
	errc := make(chan error, 1)
	go func() {
		if _, err := a.Write(data); err != nil {
			errc <- err
			return
		}
		errc <- a.CloseWrite()
	}()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("peer ReadAll: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("peer read %d bytes, want the %d written before CloseWrite", len(got), len(data))
	}
	if err := <-errc; err != nil {
		t.Fatalf("Write+CloseWrite: %v", err)
	}
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("peer Read after EOF: got %d, %v; want 0, io.EOF", n, err)
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after CloseWrite: got %v, want net.ErrClosed", err)
	}
	if _, err := b.Write([]byte("reply")); err != nil {
		t.Fatalf("peer Write after our CloseWrite: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "reply" {
		t.Fatalf("Read after CloseWrite: got %q, %v; want reply, nil", buf, err)
	}
}

func testCloseRead(t *testing.T, c, s muxer.Session) {
	a, b := mustOpen(t, c, s)
	defer b.Close()
	if err := a.CloseRead(); err != nil {
		t.Fatalf("CloseRead: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after CloseRead: got %v, want net.ErrClosed", err)
	}
	if _, err := a.Write([]byte("still writable")); err != nil {
		t.Errorf("Write after CloseRead: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	got, err := io.ReadAll(b)
	if err != nil || string(got) != "still writable" {
		t.Errorf("peer ReadAll: got %q, %v; want %q, nil", got, err, "still writable")
	}
}

func testReset(t *testing.T, c, s muxer.Session) {
	a, b := mustOpen(t, c, s)
	if _, err := a.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 1))
		readErr <- err
	}()
	if err := a.Reset(); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	err := <-readErr
	var merr *muxer.Error
	if !errors.Is(err, muxer.ErrStreamReset) || !errors.As(err, &merr) || !merr.Remote {
		t.Fatalf("peer Read after Reset: got %v, want ErrStreamReset with Remote", err)
	}
	if _, err := b.Write([]byte("y")); !errors.Is(err, muxer.ErrStreamReset) {
		t.Errorf("peer Write after Reset: got %v, want ErrStreamReset", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after own Reset: got %v, want net.ErrClosed", err)
	}
	if c.IsClosed() || s.IsClosed() {
		t.Errorf("a stream reset closed the session")
	}
}

// testSessionClose: closing a session fails its streams' pending and later
// operations with ErrSessionClosed, on both ends, with the right cause.
func testSessionClose(t *testing.T, c, s muxer.Session) {
	a, b := mustOpen(t, c, s)
	readErr := make(chan error, 1)
	go func() {
		_, err := a.Read(make([]byte, 1))
		readErr <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: got %v, want nil", err)
	}
	if err := <-readErr; !errors.Is(err, muxer.ErrSessionClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("pending Read: got %v, want ErrSessionClosed caused by net.ErrClosed", err)
	}
	if err := c.Err(); !errors.Is(err, muxer.ErrSessionClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("Err(): got %v, want ErrSessionClosed caused by net.ErrClosed", err)
	}
	if _, err := c.OpenStream(context.Background()); !errors.Is(err, muxer.ErrSessionClosed) {
		t.Errorf("OpenStream after Close: got %v, want ErrSessionClosed", err)
	}
	select {
	case <-s.Done():
	case <-time.After(opTimeout):
		t.Fatalf("peer session still open %v after Close", opTimeout)
	}
	// The peer notices on reading (EOF) or on writing (closed connection).
	if err := s.Err(); !errors.Is(err, muxer.ErrSessionClosed) || !errors.Is(err, muxer.ErrConnClosed) {
		t.Errorf("peer Err(): got %v, want ErrSessionClosed caused by ErrConnClosed", err)
	}
	if _, err := b.Write([]byte("x")); !errors.Is(err, muxer.ErrSessionClosed) {
		t.Errorf("peer Write: got %v, want ErrSessionClosed", err)
	}
	if _, err := s.AcceptStream(context.Background()); !errors.Is(err, muxer.ErrSessionClosed) {
		t.Errorf("peer AcceptStream: got %v, want ErrSessionClosed", err)
	}
	if _, err := s.Ping(context.Background()); !errors.Is(err, muxer.ErrSessionClosed) {
		t.Errorf("peer Ping: got %v, want ErrSessionClosed", err)
	}
}

func testContextCancellation(t *testing.T, c, s muxer.Session) {
	cause := errors.New("test cancelled it")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	if _, err := s.AcceptStream(ctx); !errors.Is(err, cause) {
		t.Errorf("AcceptStream(cancelled): got %v, want the cause", err)
	}
	if _, err := c.OpenStream(ctx); !errors.Is(err, cause) {
		t.Errorf("OpenStream(cancelled): got %v, want the cause", err)
	}
	if _, err := c.Ping(ctx); !errors.Is(err, cause) {
		t.Errorf("Ping(cancelled): got %v, want the cause", err)
	}
	// a blocked AcceptStream returns when its context ends
	tctx, tcancel := context.WithTimeoutCause(context.Background(), 50*time.Millisecond, cause)
	defer tcancel()
	if _, err := s.AcceptStream(tctx); !errors.Is(err, cause) {
		t.Errorf("AcceptStream(expiring): got %v, want the cause", err)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), opTimeout)
	defer pcancel()
	rtt, err := c.Ping(pctx)
	if err != nil || rtt <= 0 {
		t.Errorf("Ping: got %v, %v; want a positive RTT", rtt, err)
	}
}
