package noise

import (
	"bytes"
	"context"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// TestBuffersReleasedWhenIdle: after each exchange, of any size, the
// writer holds no pooled buffer, and the reader holds one only after a
// medium frame (a 4 KiB buffer, kept for the next medium frame); a small
// frame after it releases it.
func TestBuffersReleasedWhenIdle(t *testing.T) {
	a, b, stop := securePair(t, sectest.TCPPair)
	defer stop()
	exchange := func(size int) {
		t.Helper()
		data := bytes.Repeat([]byte{byte(size)}, size)
		errc := make(chan error, 1)
		go func() {
			_, err := a.Write(data)
			errc <- err
		}()
		got := make([]byte, size)
		if _, err := io.ReadFull(b, got); err != nil {
			t.Fatalf("size %d: reading: %v", size, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("size %d: writing: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("size %d: data read differs from data written", size)
		}
	}
	// held reports the capacity of the reader's pooled buffer (0: none),
	// the bytes it holds not yet consumed, and whether the writer holds a
	// buffer.
	held := func() (int, int, bool) {
		b.rmu.Lock()
		rcap, unread := 0, len(b.rbuf)-b.rstart+len(b.plain)
		if b.rpool != nil {
			rcap = cap(*b.rpool)
		}
		b.rmu.Unlock()
		a.wmu.Lock()
		defer a.wmu.Unlock()
		return rcap, unread, a.wpool != nil
	}
	for _, size := range []int{1, smallRead - lenPrefix - tagSize, smallRead, 3000, midBuf, maxPlaintext, 3*maxPlaintext + 77} {
		exchange(size)
		wantCap := 0
		if frame := lenPrefix + size%maxPlaintext + tagSize; frame > smallRead && frame <= midBuf {
			wantCap = midBuf
		}
		if rcap, unread, w := held(); rcap != wantCap || unread != 0 || w {
			t.Errorf("after %d bytes: reader holds a pooled buffer of %d bytes with %d unread, writer holds one: %v; want %d, 0, false", size, rcap, unread, w, wantCap)
		}
		exchange(1)
		if rcap, unread, w := held(); rcap != 0 || unread != 0 || w {
			t.Errorf("after %d bytes then 1: reader holds a pooled buffer of %d bytes with %d unread, writer holds one: %v; want none", size, rcap, unread, w)
		}
	}
}

// TestReleasedReadBufferCleared: a pooled read buffer, which held
// plaintext decrypted in place, is zeroed before it goes back to the pool.
func TestReleasedReadBufferCleared(t *testing.T) {
	for _, n := range []int{midBuf, bigBuf} {
		c := &Conn{}
		p := getBuf(n)
		for i := range *p {
			(*p)[i] = 0xAA
		}
		// Compaction left rbuf shorter than what was written to the
		// buffer: the bytes beyond it held plaintext too.
		c.rpool, c.rbuf, c.rstart, c.rhigh = p, (*p)[:10], 10, n
		c.releaseRead()
		if i := bytes.IndexFunc(*p, func(r rune) bool { return r != 0 }); i >= 0 {
			t.Errorf("buffer of %d bytes: byte %d not cleared on release", n, i)
		}
		if c.rpool != nil || len(c.rbuf) != 0 || cap(c.rbuf) != smallRead || c.rstart != 0 {
			t.Errorf("buffer of %d bytes: after release rpool %v, rbuf len %d cap %d, rstart %d; want nil, 0, %d, 0", n, c.rpool != nil, len(c.rbuf), cap(c.rbuf), c.rstart, smallRead)
		}
	}
}

// timeoutWriter lets skip Writes through once armed, then writes only the
// first limit bytes of the next one and fails it with a timeout.
type timeoutWriter struct {
	net.Conn
	mu          sync.Mutex
	armed       bool
	skip, limit int
}

func (w *timeoutWriter) arm(skip, limit int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed, w.skip, w.limit = true, skip, limit
}

func (w *timeoutWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	cut := w.armed && w.skip == 0
	if w.armed && w.skip > 0 {
		w.skip--
	}
	if cut {
		w.armed = false
	}
	limit := w.limit
	w.mu.Unlock()
	if !cut {
		return w.Conn.Write(b)
	}
	n, err := w.Conn.Write(b[:min(limit, len(b))])
	if err != nil {
		return n, err
	}
	return n, os.ErrDeadlineExceeded
}

// TestWriteTimeoutResumes: a Write that times out in the middle of a frame
// reports the frame's chunk as written and keeps the rest of the frame (and
// its pooled buffer) to send first in the next Write; one that times out
// before any byte of a frame left takes that chunk back. Either way the
// reader sees exactly the bytes reported written.
func TestWriteTimeoutResumes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		skip, limit int // raw writes let through, then bytes of the next one
		size        int
		wantN       int
		wantPending bool
	}{
		{"nothing sent", 0, 0, 100, 0, false},
		{"part of a small frame", 0, 7, 100, 100, true},
		{"part of a full frame", 0, 1000, maxPlaintext, maxPlaintext, true},
		{"nothing of the second frame", 1, 0, maxPlaintext + 500, maxPlaintext, false},
		{"part of the second frame", 1, 100, maxPlaintext + 500, maxPlaintext + 500, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := sectest.TCPPair(t)
			tw := &timeoutWriter{Conn: c1}
			ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
			ri, rr := sectest.Pair(context.Background(), newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), tw, c2, security.Params{}, security.Params{})
			defer sectest.CloseAll(ri, rr)
			if ri.Err != nil || rr.Err != nil {
				t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
			}
			a, b := ri.Conn.(*Conn), rr.Conn.(*Conn)
			type result struct {
				data []byte
				err  error
			}
			read := make(chan result, 1)
			go func() {
				data, err := io.ReadAll(b)
				read <- result{data, err}
			}()

			first := bytes.Repeat([]byte{'a'}, tc.size)
			second := []byte("second write")
			tw.arm(tc.skip, tc.limit)
			n, err := a.Write(first)
			if n != tc.wantN || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("first Write = %d, %v; want %d, a timeout", n, err, tc.wantN)
			}
			a.wmu.Lock()
			pending := len(a.wpending) > 0 && a.wpool != nil
			a.wmu.Unlock()
			if pending != tc.wantPending {
				t.Errorf("after the timeout, rest of a frame pending in a pooled buffer = %v, want %v", pending, tc.wantPending)
			}
			if n, err := a.Write(second); n != len(second) || err != nil {
				t.Fatalf("second Write = %d, %v; want %d, nil", n, err, len(second))
			}
			if a.wpool != nil || len(a.wpending) != 0 {
				t.Errorf("after the second Write the writer still holds a buffer")
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			got := <-read
			want := append(first[:n:n], second...)
			if got.err != nil || !bytes.Equal(got.data, want) {
				t.Errorf("reader got %d bytes (%v), want the %d reported written", len(got.data), got.err, len(want))
			}
		})
	}
}

// TestMixedSizes: writes of random sizes (small, medium and large frames,
// back to back so that reads find several frames and partial ones) and
// reads of random sizes deliver the stream intact through every buffer
// change.
func TestMixedSizes(t *testing.T) {
	a, b, stop := securePair(t, sectest.TCPPair)
	defer stop()
	rng := mrand.New(mrand.NewPCG(1, 2))
	sizes := []int{1, 20, smallRead - 20, smallRead + 1, 1500, midBuf - 10, midBuf + 10, 40000, maxPlaintext, maxPlaintext + 3}
	var want []byte
	var writes [][]byte
	for i := range 300 {
		w := make([]byte, sizes[rng.IntN(len(sizes))])
		for j := range w {
			w[j] = byte(i + j)
		}
		writes = append(writes, w)
		want = append(want, w...)
	}
	errc := make(chan error, 1)
	go func() {
		for _, w := range writes {
			if _, err := a.Write(w); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	got := make([]byte, 0, len(want))
	buf := make([]byte, maxPlaintext+100)
	for len(got) < len(want) {
		n, err := b.Read(buf[:1+rng.IntN(min(len(buf), len(want)-len(got)))])
		if err != nil {
			t.Fatalf("reading after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("stream read differs from the writes")
	}
}
