package yamux

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pipeCapacity is the buffer of the in-memory connection in each
// direction, about a loopback socket's.
const pipeCapacity = 64 << 10

// newSessions returns an initiator (yamux client) and a responder session
// over an in-memory pipe, closed at the end of the test.
func newSessions(t testing.TB, client, server Config) (*session, *session) {
	t.Helper()
	a, b := newPipe(pipeCapacity)
	c := mustSession(t, client, a, network.RoleInitiator)
	s := mustSession(t, server, b, network.RoleResponder)
	return c, s
}

func mustSession(t testing.TB, cfg Config, conn net.Conn, role network.Role) *session {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	s, err := m.newSession(conn, role)
	if err != nil {
		t.Fatalf("NewSession(%v): %v", role, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openPair opens a stream on from and accepts it on to.
func openPair(t testing.TB, from, to *session) (muxer.Stream, muxer.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := from.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	b, err := to.AcceptStream(ctx)
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return a, b
}

// TestRoleDecidesStreamIDs checks on the wire that the initiator is the
// yamux client (odd stream IDs) and the responder the server (even).
func TestRoleDecidesStreamIDs(t *testing.T) {
	for _, tt := range []struct {
		role    network.Role
		wantOdd bool
	}{{network.RoleInitiator, true}, {network.RoleResponder, false}} {
		t.Run(tt.role.String(), func(t *testing.T) {
			a, raw := newPipe(pipeCapacity)
			defer raw.Close()
			s := mustSession(t, Config{KeepAliveInterval: -1}, a, tt.role)
			if _, err := s.OpenStream(context.Background()); err != nil {
				t.Fatalf("OpenStream: %v", err)
			}
			for {
				h := readFrame(t, raw)
				if h.typ == typePing {
					continue // the first RTT measurement
				}
				if h.typ != typeWindowUpdate || h.flags&flagSYN == 0 {
					t.Fatalf("first stream frame: got %+v, want a window update with SYN", h)
				}
				if odd := h.streamID%2 == 1; odd != tt.wantOdd {
					t.Fatalf("stream ID %d: odd = %v, want %v", h.streamID, odd, tt.wantOdd)
				}
				return
			}
		})
	}
}

func TestNewSessionUnknownRole(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newPipe(pipeCapacity)
	defer a.Close()
	defer b.Close()
	if _, err := m.NewSession(a, network.RoleUnknown); !errors.Is(err, ErrUnknownRole) {
		t.Fatalf("NewSession(RoleUnknown): got %v, want ErrUnknownRole", err)
	}
	if got := m.ID(); got != "/yamux/1.0.0" {
		t.Errorf("ID() = %q, want /yamux/1.0.0", got)
	}
}

// randomData is size reproducible pseudo-random bytes.
func randomData(seed uint64, size int) []byte {
	b := make([]byte, size)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// TestGuardForgetsStreams: the window guard stops tracking a stream once
// it is closed both ways or reset, so it never grows beyond go-yamux's own
// stream table.
func TestGuardForgetsStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		for _, end := range []string{"close", "reset"} {
			a, b := openPair(t, c, s)
			if _, err := a.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(b, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if end == "close" {
				a.Close()
				b.Close()
			} else {
				a.Reset()
			}
		}
		synctest.Wait() // the last FIN or RST crosses the pipe
		if got := c.conn.tracked() + s.conn.tracked(); got != 0 {
			t.Errorf("window guard tracks %d streams after all closed or reset, want 0", got)
		}
		c.Close()
		s.Close()
	})
}

// TestConcurrentReads: two goroutines block in Read on one stream, then
// the peer closes it; both see EOF. Without the stream's read
// serialization one of them misses the wake-up (go-yamux notifies one
// waiting reader) and waits until its deadline. A second round moves
// 8 MiB to two readers at once; under -race it exercises go-yamux's
// unguarded receive-window update.
func TestConcurrentReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		for _, size := range []int64{0, 8 << 20} {
			a, b := openPair(t, c, s)
			_ = b.SetReadDeadline(time.Now().Add(time.Minute)) // on the fake clock
			var total atomic.Int64
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					buf := make([]byte, 4096)
					for {
						n, err := b.Read(buf)
						total.Add(int64(n))
						if err != nil {
							if err != io.EOF {
								t.Errorf("%d bytes: Read: %v, want io.EOF", size, err)
							}
							return
						}
					}
				})
			}
			synctest.Wait() // both readers wait for data
			_, _ = a.Write(make([]byte, size))
			_ = a.CloseWrite()
			wg.Wait()
			if got := total.Load(); got != size {
				t.Errorf("two readers read %d bytes in all, want %d", got, size)
			}
		}
		c.Close()
		s.Close()
	})
}

// TestIncomingStreamLimits: streams beyond MaxIncomingStreams are reset at
// once instead of queueing, and the admitted ones still work.
func TestIncomingStreamLimits(t *testing.T) {
	const limit = 3
	c, s := newSessions(t, Config{}, Config{MaxIncomingStreams: limit})
	ctx := context.Background()
	var opened []muxer.Stream
	for range limit + 2 {
		st, err := c.OpenStream(ctx)
		if err != nil {
			t.Fatalf("OpenStream: %v", err)
		}
		opened = append(opened, st)
	}
	for i, st := range opened {
		// Within the limit the stream stays open (the read times out);
		// beyond it the responder resets it.
		_ = st.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := st.Read(make([]byte, 1))
		want := os.ErrDeadlineExceeded
		if i >= limit {
			want = muxer.ErrStreamReset
		}
		if !errors.Is(err, want) {
			t.Errorf("stream %d (limit %d): Read got %v, want %v", i, limit, err, want)
		}
	}
	for i := range limit {
		st, err := s.AcceptStream(ctx)
		if err != nil {
			t.Fatalf("AcceptStream %d: %v", i, err)
		}
		if _, err := st.Write([]byte{byte(i)}); err != nil {
			t.Errorf("Write on admitted stream %d: %v", i, err)
		}
	}
}

// TestCloseEndsEveryGoroutine: after Close on both ends, every goroutine a
// session started (go-yamux's receive and send loops, RTT measurement,
// keepalive timer, the accept loop, a Ping in flight) has ended.
func TestCloseEndsEveryGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a, b := newPipe(pipeCapacity)
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.NewSession(a, network.RoleInitiator)
	if err != nil {
		t.Fatal(err)
	}
	s, err := m.NewSession(b, network.RoleResponder)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	x, err := c.OpenStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcceptStream(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Write([]byte("unread data")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = s.Ping(cancelled) // leaves go-yamux's Ping running until Close
	_ = c.Close()
	_ = s.Close()
}

// TestAcceptWithoutGoroutine: AcceptStream with a context that never ends
// accepts from go-yamux directly (no accept goroutine while the session is
// idle), returns when the session closes, and after a cancellable caller
// has started the accept goroutine both kinds still get every stream.
func TestAcceptWithoutGoroutine(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	// looping is set just before the goroutine starts (a stack dump could
	// miss one not yet scheduled).
	loopRunning := func() bool { return s.looping.Load() }
	got := make(chan error, 1)
	go func() {
		st, err := s.AcceptStream(context.Background())
		if err == nil {
			_ = st.Close()
		}
		got <- err
	}()
	out, err := c.OpenStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := out.Write([]byte{1}); err != nil { // the SYN goes with the first write
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("direct accept: %v", err)
	}
	if loopRunning() {
		t.Fatal("an AcceptStream with a context that never ends started the accept goroutine")
	}
	// A cancellable caller starts it; a later direct caller then shares
	// go-yamux's streams with it rather than bypass it.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.AcceptStream(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled accept: %v", err)
	}
	if !loopRunning() {
		t.Fatal("a cancellable AcceptStream did not start the accept goroutine")
	}
	for i := range 2 {
		go func() {
			st, err := s.AcceptStream(context.Background())
			if err == nil {
				_ = st.Close()
			}
			got <- err
		}()
		out, err := c.OpenStream(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := out.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("accept %d with the goroutine running: %v", i, err)
		}
	}
	// Waiting directly on a fresh session, Close ends the wait.
	_, s2 := newSessions(t, Config{}, Config{})
	go func() { _, err := s2.AcceptStream(context.Background()); got <- err }()
	_ = s2.Close()
	if err := <-got; !errors.Is(err, muxer.ErrSessionClosed) {
		t.Fatalf("direct accept on a closed session: %v, want ErrSessionClosed", err)
	}
}
