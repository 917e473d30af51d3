package yamux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
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

func TestOpenAcceptBothWays(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	for _, dir := range []struct {
		name     string
		from, to *session
	}{{"initiator opens", c, s}, {"responder opens", s, c}} {
		t.Run(dir.name, func(t *testing.T) {
			a, b := openPair(t, dir.from, dir.to)
			defer a.Close()
			defer b.Close()
			if _, err := a.Write([]byte("ping")); err != nil {
				t.Fatalf("Write: %v", err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(b, got); err != nil || string(got) != "ping" {
				t.Fatalf("peer read %q, %v; want %q, nil", got, err, "ping")
			}
			if _, err := b.Write([]byte("pong")); err != nil {
				t.Fatalf("peer Write: %v", err)
			}
			if _, err := io.ReadFull(a, got); err != nil || string(got) != "pong" {
				t.Fatalf("read %q, %v; want %q, nil", got, err, "pong")
			}
		})
	}
	// Each side forgets a stream once it has seen the other's FIN.
	deadline := time.Now().Add(5 * time.Second)
	for c.NumStreams()+s.NumStreams()+c.conn.tracked()+s.conn.tracked() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := c.NumStreams() + s.NumStreams(); got != 0 {
		t.Errorf("streams open after both ends closed: got %d, want 0", got)
	}
	if got := c.conn.tracked() + s.conn.tracked(); got != 0 {
		t.Errorf("window guard tracks %d streams after all closed, want 0", got)
	}
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

// TestLargeTransferIntegrity sends different data on several streams at
// once in both directions, in odd-sized writes, and compares SHA-256 sums.
func TestLargeTransferIntegrity(t *testing.T) {
	for _, tt := range []struct {
		name    string
		streams int
		size    int
	}{{"1 stream 16 MiB", 1, 16 << 20}, {"8 streams 2 MiB", 8, 2 << 20}} {
		t.Run(tt.name, func(t *testing.T) {
			c, s := newSessions(t, Config{}, Config{})
			var wg sync.WaitGroup
			for i := range tt.streams {
				a, b := openPair(t, c, s)
				for j, ends := range [][2]muxer.Stream{{a, b}, {b, a}} {
					data := randomData(uint64(2*i+j), tt.size)
					want := sha256.Sum256(data)
					wg.Add(2)
					go func() {
						defer wg.Done()
						for off := 0; off < len(data); {
							n := min(len(data)-off, 1+off%70000)
							if _, err := ends[0].Write(data[off : off+n]); err != nil {
								t.Errorf("stream %d: Write: %v", i, err)
								return
							}
							off += n
						}
						if err := ends[0].CloseWrite(); err != nil {
							t.Errorf("stream %d: CloseWrite: %v", i, err)
						}
					}()
					go func() {
						defer wg.Done()
						h := sha256.New()
						n, err := io.Copy(h, ends[1])
						if err != nil {
							t.Errorf("stream %d: reading: %v", i, err)
						}
						if n != int64(len(data)) {
							t.Errorf("stream %d: read %d bytes, want %d", i, n, len(data))
						}
						if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
							t.Errorf("stream %d: SHA-256 %x, want %x", i, got, want)
						}
					}()
				}
			}
			wg.Wait()
		})
	}
}

// TestCloseWrite: data written before CloseWrite reaches the peer, then
// EOF; the other direction stays usable; writing afterwards fails.
func TestCloseWrite(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	a, b := openPair(t, c, s)
	defer a.Close()
	defer b.Close()

	data := randomData(1, 1<<20)
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
	// half-closed: the reverse direction still works
	if _, err := b.Write([]byte("reply")); err != nil {
		t.Fatalf("peer Write after our CloseWrite: %v", err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "reply" {
		t.Fatalf("Read after CloseWrite: got %q, %v; want reply, nil", buf, err)
	}
}

func TestCloseReadAndClose(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	a, b := openPair(t, c, s)
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

func TestReset(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	a, b := openPair(t, c, s)
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
	deadline := time.Now().Add(5 * time.Second) // the RST may still be queued
	for c.conn.tracked()+s.conn.tracked() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := c.conn.tracked() + s.conn.tracked(); got != 0 {
		t.Errorf("window guard tracks %d streams after a reset, want 0", got)
	}
}

// TestSessionClose: closing a session fails its streams' pending and later
// operations with ErrSessionClosed, on both ends, with the right cause.
func TestSessionClose(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	a, b := openPair(t, c, s)
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
	if _, err := c.OpenStream(context.Background()); !errors.Is(err, muxer.ErrSessionClosed) {
		t.Errorf("OpenStream after Close: got %v, want ErrSessionClosed", err)
	}
	<-s.Done()
	// The peer notices on reading (EOF) or on writing (closed pipe).
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

func TestContextCancellation(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
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
	rtt, err := c.Ping(context.Background())
	if err != nil || rtt <= 0 {
		t.Errorf("Ping: got %v, %v; want a positive RTT", rtt, err)
	}
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
