package noise

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// securePair returns both ends of a Noise connection over the raw pair
// made by pair.
func securePair(t testing.TB, pair func(testing.TB) (net.Conn, net.Conn)) (*Conn, *Conn, func()) {
	t.Helper()
	c1, c2 := pair(t)
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	ri, rr := sectest.Pair(context.Background(), newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), c1, c2, security.Params{}, security.Params{})
	if ri.Err != nil || rr.Err != nil {
		sectest.CloseAll(ri, rr)
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	return ri.Conn.(*Conn), rr.Conn.(*Conn), func() { sectest.CloseAll(ri, rr) }
}

// TestLargeWrite: a write larger than a frame is split into frames of at
// most 65535 bytes and arrives whole.
func TestLargeWrite(t *testing.T) {
	a, b, stop := securePair(t, sectest.TCPPair)
	defer stop()
	data := make([]byte, 3*maxPlaintext+1234)
	rand.Read(data)
	errc := make(chan error, 1)
	go func() {
		n, err := a.Write(data)
		if err == nil && n != len(data) {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	got := make([]byte, len(data))
	if _, err := io.ReadFull(b, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data read differs from data written")
	}
}

// TestFrameSizes looks at the wire: every frame is at most 65535 bytes and
// the split is maximal.
func TestFrameSizes(t *testing.T) {
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	c1, c2 := net.Pipe()
	ri, rr := sectest.Pair(context.Background(), newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), c1, c2, security.Params{}, security.Params{})
	defer sectest.CloseAll(ri, rr)
	if ri.Err != nil || rr.Err != nil {
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	go ri.Conn.Write(make([]byte, 2*maxPlaintext+10))
	var sizes []int
	for range 3 {
		var hdr [2]byte
		if _, err := io.ReadFull(c2, hdr[:]); err != nil {
			t.Fatal(err)
		}
		n := int(binary.BigEndian.Uint16(hdr[:]))
		sizes = append(sizes, n)
		if _, err := io.ReadFull(c2, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	want := []int{maxMessage, maxMessage, 10 + tagSize}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("frame sizes %v, want %v", sizes, want)
		}
	}
}

// TestAlteredCiphertext: one flipped bit after the handshake makes the
// reader fail with ErrDecrypt and closes the connection.
func TestAlteredCiphertext(t *testing.T) {
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	c1, mitm1 := net.Pipe()
	mitm2, c2 := net.Pipe()
	var flip sync.WaitGroup
	flip.Add(2)
	var armed = make(chan struct{})
	relay := func(dst, src net.Conn, corrupt bool) {
		defer flip.Done()
		buf := make([]byte, 70000)
		for {
			n, err := src.Read(buf)
			if n > 0 && corrupt {
				select {
				case <-armed:
					buf[n-1] ^= 0x80
				default:
				}
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					src.Close()
					return
				}
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	go relay(mitm2, mitm1, true)
	go relay(mitm1, mitm2, false)
	defer flip.Wait()
	ri, rr := sectest.Pair(context.Background(), newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), c1, c2, security.Params{}, security.Params{})
	defer sectest.CloseAll(ri, rr)
	if ri.Err != nil || rr.Err != nil {
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	close(armed)
	go ri.Conn.Write([]byte("hello"))
	_, err := rr.Conn.Read(make([]byte, 10))
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("read error %v, want ErrDecrypt", err)
	}
	if _, err := rr.Conn.Read(make([]byte, 10)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("second read error %v, want ErrDecrypt again", err)
	}
	if _, err := rr.Conn.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after ErrDecrypt: %v, want net.ErrClosed", err)
	}
}

func TestCloseIdempotent(t *testing.T) {
	a, b, stop := securePair(t, sectest.PipePair)
	defer stop()
	first := a.Close()
	for range 3 {
		if err := a.Close(); err != first {
			t.Fatalf("Close again = %v, want the first result %v", err, first)
		}
	}
	if _, err := a.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Write after Close = %v, want net.ErrClosed", err)
	}
	if _, err := a.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Errorf("peer Read after Close = %v, want io.EOF", err)
	}
}
