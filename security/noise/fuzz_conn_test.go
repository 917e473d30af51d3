package noise

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/security"
)

// memConn is a net.Conn that collects writes and serves reads from src in
// pieces whose sizes come from pieces (cycled), then io.EOF.
type memConn struct {
	net.Conn
	out    bytes.Buffer
	src    []byte
	pieces []byte
	i      int
}

func (m *memConn) Write(b []byte) (int, error) { return m.out.Write(b) }
func (m *memConn) Close() error                { return nil }
func (m *memConn) Read(b []byte) (int, error) {
	if len(m.src) == 0 {
		return 0, io.EOF
	}
	n := len(b)
	if len(m.pieces) > 0 {
		n = min(n, 1+int(m.pieces[m.i%len(m.pieces)])*37)
		m.i++
	}
	n = copy(b, m.src[:min(n, len(m.src))])
	m.src = m.src[n:]
	return n, nil
}

// FuzzConnFrames writes messages of fuzzer-chosen sizes through a Conn,
// optionally flips one bit of the resulting stream, and reads it back
// through another Conn whose raw reads and whose Read calls are cut into
// fuzzer-chosen pieces. Invariants: unaltered, exactly the written bytes
// come back, then io.EOF; altered, what comes back is a prefix of them
// (never altered data) ending in ErrDecrypt or security.ErrProtocol; and
// once the reader has stopped it holds no pooled buffer.
func FuzzConnFrames(f *testing.F) {
	f.Add([]byte{1, 0, 10, 200, 255, 255}, []byte{}, uint32(0))
	f.Add([]byte{0, 5, 7, 3, 255, 255, 0, 1}, []byte{0, 3, 200}, uint32(0))
	f.Add([]byte{0, 50, 20, 0}, []byte{7}, uint32(1))
	f.Add([]byte{255, 255, 0, 1}, []byte{1, 2, 3}, uint32(70000*8))
	suite := noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256)
	var key [32]byte
	key[0] = 1
	f.Fuzz(func(t *testing.T, sizes, pieces []byte, flip uint32) {
		if len(sizes) > 64 {
			sizes = sizes[:64]
		}
		wraw := &memConn{}
		w := &Conn{raw: wraw, closed: make(chan struct{}), send: noise.UnsafeNewCipherState(suite, key, 0)}
		var want []byte
		// At most about 300 KB per input, read in pieces of at least one
		// byte, keeps an input well under a second.
		for i := 0; i+1 < len(sizes) && len(want) < 160000; i += 2 {
			// Sizes up to 2*65535+..., so that writes split into frames.
			n := (int(sizes[i])<<8 | int(sizes[i+1])) * 2
			msg := bytes.Repeat([]byte{byte(i + 1)}, n)
			if k, err := w.Write(msg); k != n || err != nil {
				t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
			}
			want = append(want, msg...)
		}
		if w.wpool != nil {
			t.Fatal("writer holds a pooled buffer after its writes")
		}
		stream := wraw.out.Bytes()
		altered := flip > 0 && int(flip/8) < len(stream)
		if altered {
			stream[flip/8] ^= 1 << (flip % 8)
		}
		r := &Conn{raw: &memConn{src: stream, pieces: pieces}, closed: make(chan struct{}), recv: noise.UnsafeNewCipherState(suite, key, 0)}
		r.rbuf = r.rsmall[:0]
		var got []byte
		buf := make([]byte, 70000)
		var err error
		for i := 0; ; i++ {
			size := len(buf)
			if len(pieces) > 0 {
				size = 1 + int(pieces[(i+1)%len(pieces)])*263
			}
			var n int
			n, err = r.Read(buf[:min(size, len(buf))])
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
			if len(got) > len(want) {
				t.Fatalf("read %d bytes, more than the %d written", len(got), len(want))
			}
		}
		if !bytes.HasPrefix(want, got) {
			t.Fatalf("read bytes differ from the written ones (%d read)", len(got))
		}
		switch {
		case !altered && (!errors.Is(err, io.EOF) || len(got) != len(want)):
			t.Fatalf("unaltered stream: read %d of %d bytes, then %v; want all, then io.EOF", len(got), len(want), err)
		case altered && !errors.Is(err, ErrDecrypt) && !errors.Is(err, security.ErrProtocol):
			t.Fatalf("altered stream: read %d of %d bytes, then %v; want ErrDecrypt or ErrProtocol", len(got), len(want), err)
		}
		if r.rpool != nil {
			t.Fatal("reader holds a pooled buffer after a permanent error")
		}
	})
}
