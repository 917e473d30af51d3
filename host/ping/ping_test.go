package ping

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/muxer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs Serve on s in a goroutine; the result arrives on the channel
// with the time Serve returned.
func serve(ctx context.Context, srv Server, s Stream) <-chan result {
	done := make(chan result, 1)
	go func() {
		err := srv.Serve(ctx, s)
		done <- result{err, time.Now()}
	}()
	return done
}

type result struct {
	err error
	at  time.Time
}

// TestPingerRTT pings three times over yamux on a path with a 10 ms one-way
// delay: each round trip is exactly 20 ms on the fake clock, pings start
// one Interval apart, and closing the write side ends the server cleanly.
func TestPingerRTT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 10 * time.Millisecond
		c, s := streamPair(t, delay)
		defer c.Close()
		done := serve(t.Context(), Server{}, s)

		start := time.Now()
		var seqs []int
		p := Pinger{Count: 3, Interval: 500 * time.Millisecond}
		st, err := p.Run(t.Context(), c, func(seq int, rtt time.Duration) {
			seqs = append(seqs, seq)
			if rtt != 2*delay {
				t.Errorf("ping %d: rtt %v, want %v", seq, rtt, 2*delay)
			}
		})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if got, want := time.Since(start), 2*p.Interval+2*delay; got != want {
			t.Errorf("Run took %v, want %v", got, want)
		}
		want := Stats{Count: 3, Min: 2 * delay, Max: 2 * delay, Total: 6 * delay}
		if st != want || st.Avg() != 2*delay {
			t.Errorf("stats %+v (avg %v), want %+v (avg %v)", st, st.Avg(), want, 2*delay)
		}
		if len(seqs) != 3 || seqs[0] != 1 || seqs[2] != 3 {
			t.Errorf("sequence numbers %v, want [1 2 3]", seqs)
		}
		r := <-done
		if r.err != nil {
			t.Errorf("Serve: %v, want nil after the client closed its write side", r.err)
		}
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("client Read after Serve: %d, %v; want EOF", n, err)
		}
	})
}

// TestServeIdleTimeout: a client that pings once and then stays silent has
// its stream closed exactly IdleTimeout after the server last read.
func TestServeIdleTimeout(t *testing.T) {
	for _, idle := range []time.Duration{0, 5 * time.Second} {
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
				if _, err := Ping(t.Context(), c, nil); err != nil {
					t.Fatalf("Ping: %v", err)
				}
				r := <-done
				if !errors.Is(r.err, ErrIdleTimeout) {
					t.Errorf("Serve: %v, want ErrIdleTimeout", r.err)
				}
				// The server read the payload at delay and re-armed then.
				if got := r.at.Sub(start); got != delay+want {
					t.Errorf("Serve returned after %v, want %v", got, delay+want)
				}
				if _, err := c.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("client Read: %v, want EOF (the server closed, not reset)", err)
				}
			})
		})
	}
}

// TestServeTruncated: a stream that ends inside a payload is a protocol
// error, and the server resets the stream.
func TestServeTruncated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		done := serve(t.Context(), Server{}, s)
		payload := bytes.Repeat([]byte{7}, Size+10)
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
		// Read the complete payload's echo before the reset, which
		// discards what the client has not read yet.
		echo := make([]byte, Size)
		if _, err := io.ReadFull(c, echo); err != nil || !bytes.Equal(echo, payload[:Size]) {
			t.Errorf("first echo: %x, %v; want %x", echo, err, payload[:Size])
		}
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if r := <-done; !errors.Is(r.err, ErrTruncated) {
			t.Errorf("Serve: %v, want ErrTruncated", r.err)
		}
		if _, err := c.Read(echo); !errors.Is(err, muxer.ErrStreamReset) {
			t.Errorf("client Read after the partial payload: %v, want ErrStreamReset", err)
		}
	})
}

// TestPingMismatch: an echo that differs in one bit is ErrMismatch.
func TestPingMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		defer s.Close()
		go func() {
			buf := make([]byte, Size)
			if _, err := io.ReadFull(s, buf); err != nil {
				return
			}
			buf[Size-1] ^= 1
			_, _ = s.Write(buf)
		}()
		if _, err := Ping(t.Context(), c, nil); !errors.Is(err, ErrMismatch) {
			t.Errorf("Ping: %v, want ErrMismatch", err)
		}
	})
}

// TestPingUsesRandom: the payload comes from the given reader.
func TestPingUsesRandom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		got := make(chan []byte, 1)
		go func() {
			defer s.Close()
			buf := make([]byte, Size)
			_, _ = io.ReadFull(s, buf)
			got <- buf
			_, _ = s.Write(buf)
		}()
		want := bytes.Repeat([]byte{0xA5}, Size)
		if _, err := Ping(t.Context(), c, bytes.NewReader(want)); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if b := <-got; !bytes.Equal(b, want) {
			t.Errorf("payload %x, want %x", b, want)
		}
		if _, err := Ping(t.Context(), c, bytes.NewReader(want[:5])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("Ping with 5 random bytes: %v, want io.ErrUnexpectedEOF", err)
		}
	})
}

// TestPingCancel: cancelling ctx unblocks a Ping whose echo never comes,
// at the moment of cancellation, with the context's cause.
func TestPingCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		defer s.Close()
		cause := errors.New("operator gave up")
		ctx, cancel := context.WithCancelCause(t.Context())
		time.AfterFunc(3*time.Second, func() { cancel(cause) })
		start := time.Now()
		if _, err := Ping(ctx, c, nil); err != cause {
			t.Errorf("Ping: %v, want the cause %v", err, cause)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("Ping returned after %v, want 3s", got)
		}
	})
}

// TestPingerTimeout: a server that never echoes fails the Pinger after its
// Timeout, with an error that is a deadline.
func TestPingerTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		defer s.Close()
		start := time.Now()
		st, err := Pinger{Count: 2, Timeout: 2 * time.Second}.Run(t.Context(), c, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run: %v, want context.DeadlineExceeded", err)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("Run failed after %v, want 2s", got)
		}
		if st.Count != 0 {
			t.Errorf("stats count %d, want 0", st.Count)
		}
	})
}

// TestServeCancel: cancelling the server's ctx ends Serve with the cause and
// closes the stream.
func TestServeCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		ctx, cancel := context.WithCancel(t.Context())
		done := serve(ctx, Server{}, s)
		if _, err := Ping(t.Context(), c, nil); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		cancel()
		if r := <-done; r.err != context.Canceled {
			t.Errorf("Serve: %v, want context.Canceled", r.err)
		}
		if _, err := Ping(t.Context(), c, nil); err == nil {
			t.Errorf("Ping after the server was cancelled: nil error")
		}
	})
}

// TestPingTCP runs the protocol over loopback TCP.
func TestPingTCP(t *testing.T) {
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
	st, err := Pinger{Count: 5, Interval: time.Millisecond}.Run(ctx, conn.(*net.TCPConn), nil)
	if err != nil || st.Count != 5 || st.Min <= 0 {
		t.Errorf("Run: %+v, %v; want 5 pings with positive RTTs", st, err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// FuzzServe feeds arbitrary client bytes to the server: it echoes exactly
// the complete payloads, succeeds if and only if nothing is left over, and
// always closes (or resets) the stream.
func FuzzServe(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, Size))
	f.Add(make([]byte, 3*Size+1))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := newFakeStream(in)
		err := Serve(context.Background(), s)
		whole := len(in) / Size * Size
		if got := s.Out.Bytes(); !bytes.Equal(got, in[:whole]) {
			t.Errorf("echoed %d bytes, want the first %d of the input", len(got), whole)
		}
		if whole == len(in) {
			if err != nil || !s.Closed || s.WasReset {
				t.Errorf("Serve: %v (closed %v, reset %v); want nil, closed", err, s.Closed, s.WasReset)
			}
		} else if !errors.Is(err, ErrTruncated) || !s.WasReset {
			t.Errorf("Serve: %v (reset %v); want ErrTruncated and a reset", err, s.WasReset)
		}
	})
}

// TestServeTrickle: a client sending a payload one byte per second does
// not extend the server's wait: the stream closes IdleTimeout after the
// server began waiting, with the payload incomplete.
func TestServeTrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := streamPair(t, 0)
		defer c.Close()
		const idle = 5 * time.Second
		start := time.Now()
		done := serve(t.Context(), Server{IdleTimeout: idle}, s)
		trickled := make(chan struct{})
		go func() {
			defer close(trickled)
			for range Size {
				if _, err := c.Write([]byte{1}); err != nil {
					return // the server reset the stream
				}
				time.Sleep(time.Second)
			}
		}()
		defer func() { <-trickled }()
		r := <-done
		if !errors.Is(r.err, ErrIdleTimeout) {
			t.Errorf("Serve: %v, want ErrIdleTimeout", r.err)
		}
		if got := r.at.Sub(start); got != idle {
			t.Errorf("Serve returned after %v, want %v", got, idle)
		}
	})
}
