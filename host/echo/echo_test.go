package echo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/muxer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type result struct {
	err error
	at  time.Time
}

func serve(ctx context.Context, srv Server, s Stream) <-chan result {
	done := make(chan result, 1)
	go func() {
		err := srv.Serve(ctx, s)
		done <- result{err, time.Now()}
	}()
	return done
}

func randomBytes(n int) []byte {
	r := rand.NewChaCha8([32]byte{1})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

// TestEcho sends messages of several sizes, up to 1 MiB (four times the
// initial yamux windows of both directions), over yamux on a path with a
// 5 ms one-way delay, and gets each back intact.
func TestEcho(t *testing.T) {
	for _, n := range []int{0, 1, bufSize + 1, 1 << 20} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := streamPair(t, 5*time.Millisecond)
				defer c.Close()
				done := serve(t.Context(), Server{}, s)
				msg := randomBytes(n)
				reply, err := Echo(t.Context(), c, msg)
				if err != nil || !bytes.Equal(reply, msg) {
					t.Errorf("Echo(%d bytes): %d bytes (equal %v), %v; want the message, nil",
						n, len(reply), bytes.Equal(reply, msg), err)
				}
				if r := <-done; r.err != nil {
					t.Errorf("Serve: %v, want nil", r.err)
				}
			})
		})
	}
}

// TestServeMaxBytes: a client sending more than MaxBytes gets at most
// MaxBytes back and then a reset; the server reports ErrTooLarge.
func TestServeMaxBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, time.Millisecond)
		defer c.Close()
		const limit = 40000
		done := serve(t.Context(), Server{MaxBytes: limit}, s)
		msg := randomBytes(100000)
		reply, err := Echo(t.Context(), c, msg)
		if !errors.Is(err, muxer.ErrStreamReset) {
			t.Errorf("Echo: %v, want ErrStreamReset", err)
		}
		if len(reply) > limit || !bytes.Equal(reply, msg[:len(reply)]) {
			t.Errorf("reply: %d bytes, want a prefix of the message of at most %d", len(reply), limit)
		}
		if r := <-done; !errors.Is(r.err, ErrTooLarge) {
			t.Errorf("Serve: %v, want ErrTooLarge", r.err)
		}
	})
}

// TestServeIdleTimeout: a client that sends a little and then nothing has
// its stream closed IdleTimeout after the server's last read began.
func TestServeIdleTimeout(t *testing.T) {
	for _, idle := range []time.Duration{0, 2 * time.Second} {
		want := idle
		if want == 0 {
			want = DefaultIdleTimeout
		}
		t.Run(want.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const delay = 10 * time.Millisecond
				c, s := streamPair(t, delay)
				defer c.Close()
				start := time.Now()
				done := serve(t.Context(), Server{IdleTimeout: idle}, s)
				if _, err := c.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				r := <-done
				if !errors.Is(r.err, ErrIdleTimeout) {
					t.Errorf("Serve: %v, want ErrIdleTimeout", r.err)
				}
				if got := r.at.Sub(start); got != delay+want {
					t.Errorf("Serve returned after %v, want %v", got, delay+want)
				}
				got, err := io.ReadAll(c)
				if string(got) != "hello" || err != nil {
					t.Errorf("client read %q, %v; want \"hello\", then EOF", got, err)
				}
			})
		})
	}
}

// TestEchoMismatch: a reply that differs, or is longer than the message,
// is ErrMismatch.
func TestEchoMismatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func([]byte) []byte
	}{
		{"flipped", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"longer", func(b []byte) []byte { return append(b, "tail"...) }},
		{"shorter", func(b []byte) []byte { return b[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c, s := streamPair(t, 0)
				defer c.Close()
				go func() {
					defer s.Close()
					b, err := io.ReadAll(s)
					if err != nil {
						return
					}
					_, _ = s.Write(tc.mangle(b))
				}()
				if _, err := Echo(t.Context(), c, []byte("message")); !errors.Is(err, ErrMismatch) {
					t.Errorf("Echo: %v, want ErrMismatch", err)
				}
			})
		})
	}
}

// TestEchoCancel: a server that reads nothing blocks Echo's writer on flow
// control; cancelling ctx ends Echo at once with the cause, writer included.
func TestEchoCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		defer s.Close()
		cause := errors.New("enough")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(2*time.Second, func() { cancel(cause) })
		start := time.Now()
		if _, err := Echo(ctx, c, make([]byte, 1<<20)); err != cause {
			t.Errorf("Echo: %v, want the cause %v", err, cause)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("Echo returned after %v, want 2s", got)
		}
	})
}

// TestEchoTCP echoes 1 MiB over loopback TCP.
func TestEchoTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		done <- Serve(context.Background(), conn.(*net.TCPConn))
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	msg := randomBytes(1 << 20)
	if reply, err := Echo(ctx, conn.(*net.TCPConn), msg); err != nil || !bytes.Equal(reply, msg) {
		t.Errorf("Echo: %d bytes, %v; want the 1 MiB message back", len(reply), err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// FuzzServe feeds arbitrary client bytes to a server with a small limit: it
// echoes the whole input if it is within the limit, and closes the stream;
// otherwise at most the limit's worth of the input's start, then resets.
func FuzzServe(f *testing.F) {
	const limit = 1000
	f.Add([]byte{}, false)
	f.Add(make([]byte, limit), true)
	f.Add(make([]byte, limit+1), false)
	f.Fuzz(func(t *testing.T, in []byte, unlimited bool) {
		srv := Server{MaxBytes: limit}
		if unlimited {
			srv.MaxBytes = -1
		}
		s := newFakeStream(in)
		err := srv.Serve(context.Background(), s)
		out := s.Out.Bytes()
		if unlimited || len(in) <= limit {
			if !bytes.Equal(out, in) {
				t.Errorf("echoed %d bytes, want all %d of the input", len(out), len(in))
			}
			if err != nil || !s.Closed || s.WasReset {
				t.Errorf("Serve: %v (closed %v, reset %v); want nil, closed", err, s.Closed, s.WasReset)
			}
			return
		}
		if len(out) > limit || !bytes.Equal(out, in[:len(out)]) {
			t.Errorf("echoed %d bytes, want a prefix of the input of at most %d", len(out), limit)
		}
		if !errors.Is(err, ErrTooLarge) || !s.WasReset {
			t.Errorf("Serve: %v (reset %v); want ErrTooLarge and a reset", err, s.WasReset)
		}
	})
}
