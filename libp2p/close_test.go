package concordlibp2p

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	lhost "github.com/libp2p/go-libp2p/core/host"
	lnetwork "github.com/libp2p/go-libp2p/core/network"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
)

var debugSink = false

const sinkID = protocol.ID("/concord-test/sink/1.0.0")

// lostMessages connects a to b n times; each time it opens a stream,
// writes one message of size bytes, closes the stream and at once closes
// the connection, the way an application sends a last message and hangs
// up. It returns how many messages b did not receive whole.
func lostMessages(t *testing.T, a, b lhost.Host, n, size int) int {
	t.Helper()
	got := make(chan int, 1)
	b.SetStreamHandler(sinkID, func(s lnetwork.Stream) {
		var buf bytes.Buffer
		_, err := io.Copy(&buf, s)
		if err != nil && debugSink {
			t.Logf("sink: after %d bytes: %v", buf.Len(), err)
		}
		_ = s.Close()
		got <- buf.Len()
	})
	// Each message travels on a connection of its own: the next one
	// starts once b has seen the close.
	gone := make(chan struct{}, 1)
	b.Network().Notify(&lnetwork.NotifyBundle{DisconnectedF: func(_ lnetwork.Network, c lnetwork.Conn) {
		if c.RemotePeer() == a.ID() {
			select {
			case gone <- struct{}{}:
			default:
			}
		}
	}})
	msg := bytes.Repeat([]byte{0x5a}, size)
	lost := 0
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := a.Connect(ctx, lpeer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
			cancel()
			t.Fatalf("message %d: connect: %v", i, err)
		}
		s, err := a.NewStream(ctx, b.ID(), sinkID)
		if err != nil {
			cancel()
			t.Fatalf("message %d: stream: %v", i, err)
		}
		_, werr := s.Write(msg)
		cerr := s.Close()
		_ = a.Network().ClosePeer(b.ID())
		cancel()
		select {
		case m := <-got:
			if m != size || werr != nil || cerr != nil {
				lost++
				if lost <= 5 {
					t.Logf("message %d: received %d of %d bytes; write %v, close %v", i, m, size, werr, cerr)
				}
			}
		case <-time.After(2 * time.Second):
			lost++
		}
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: b did not see the connection close", i)
		}
	}
	return lost
}

// TestCloseLosesNothing: write, close the stream, close the connection, a
// thousand times, with the Concord transport on both hosts: nothing may be
// lost (FIN after a yamux go-away, not RST).
func TestCloseLosesNothing(t *testing.T) {
	const n, size = 1000, 32 << 10
	a, b := newHost(t, true, noise.ID), newHost(t, true, noise.ID)
	if lost := lostMessages(t, a, b, n, size); lost != 0 {
		t.Fatalf("Concord transport: %d of %d messages of %d bytes lost", lost, n, size)
	}
	t.Logf("Concord transport: 0 of %d messages of %d bytes lost", n, size)
}

// TestCloseStockRecord records the same with go-libp2p's stock TCP
// transport (SO_LINGER 0: the close is an RST); it asserts nothing.
func TestCloseStockRecord(t *testing.T) {
	const n, size = 100, 32 << 10
	a, b := newHost(t, false, noise.ID), newHost(t, false, noise.ID)
	lost := lostMessages(t, a, b, n, size)
	t.Logf("stock go-libp2p v0.52.0 TCP: %d of %d messages of %d bytes lost", lost, n, size)
}
