package host

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// TestCloseWithoutLoss: write, close the stream, close the connection at
// once — the sequence in which go-libp2p lost 48 of 48 messages (it closes
// with an RST and drops queued frames). Every message must arrive whole.
func TestCloseWithoutLoss(t *testing.T) {
	const iterations = 1000
	a, b := newHost(t, Config{}), newHost(t, Config{})
	received := make(chan []byte, 1)
	b.SetStreamHandler("/test/sink", func(s *Stream) {
		defer s.Close()
		data, _ := io.ReadAll(s)
		received <- data
	})
	msg := bytes.Repeat([]byte("concord "), 4096) // 32 KiB
	lost := 0
	for i := range iterations {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := a.Connect(ctx, b.AddrInfo())
		if err != nil {
			cancel()
			t.Fatalf("iteration %d: Connect: %v", i, err)
		}
		s, err := a.NewStream(ctx, b.ID(), "/test/sink")
		if err != nil {
			cancel()
			t.Fatalf("iteration %d: NewStream: %v", i, err)
		}
		if _, err := s.Write(msg); err != nil {
			t.Fatalf("iteration %d: write: %v", i, err)
		}
		_ = s.Close()
		_ = c.Close()
		select {
		case got := <-received:
			if !bytes.Equal(got, msg) {
				lost++
				t.Errorf("iteration %d: received %d of %d bytes", i, len(got), len(msg))
			}
		case <-ctx.Done():
			lost++
			t.Errorf("iteration %d: nothing received", i)
		}
		cancel()
		if !waitUntil(t, 2*time.Second, func() bool { return len(a.Conns(b.ID())) == 0 && len(b.Conns(a.ID())) == 0 }) {
			t.Fatalf("iteration %d: connection still in a table after Close", i)
		}
	}
	t.Logf("%d iterations: %d lost", iterations, lost)
}
