package host

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/peer"
)

// freezingConn stops reading once frozen, until released: a peer that
// neither answers nor closes after the go-away (js-libp2p keeps its end
// open; a frozen process does too).
type freezingConn struct {
	net.Conn
	frozen  *atomic.Bool
	release chan struct{}
}

func (c freezingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.frozen.Load() { // what arrives once frozen is never seen
		<-c.release
		return 0, io.EOF
	}
	return n, err
}

// TestCloseDoesNotWaitForLinger: Conn.Close and Host.Close return once the
// go-away is written, even to a peer that never closes in answer; the
// session's linger (2 s) goes on in the background and then closes it,
// and only then does the connection leave the table.
func TestCloseDoesNotWaitForLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		var frozen atomic.Bool
		release := make(chan struct{})
		f := newFakePeer(t, map[string]func(muxer.Stream){})
		f.wrap = func(c net.Conn) net.Conn { return freezingConn{c, &frozen, release} }
		var log eventLog
		h := memHost(t, Config{Observer: log.observe}, f.dialer(t, &wg))
		ai := peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}}
		c, err := h.Connect(context.Background(), ai)
		if err != nil {
			t.Fatal(err)
		}
		<-c.Identified()
		time.Sleep(100 * time.Millisecond) // the hello's refusal too
		frozen.Store(true)

		start := time.Now()
		_ = c.Close()
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Errorf("Conn.Close took %v, want it not to wait for the peer", d)
		}
		if n := log.count(func(e Event) bool { _, ok := e.(ConnClosed); return ok }); n != 0 {
			t.Error("the connection left the table before its session closed")
		}
		<-c.Done()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the session closed %v after Close, want the 2 s linger", d)
		}
		time.Sleep(time.Millisecond)
		if n := log.count(func(e Event) bool { cc, ok := e.(ConnClosed); return ok && cc.Reason == errClosedByUser }); n != 1 {
			t.Errorf("%d ConnClosed events with the user's reason, want 1", n)
		}

		// Host.Close likewise, with a second connection.
		frozen.Store(false)
		c2, err := h.Connect(context.Background(), ai)
		if err != nil {
			t.Fatal(err)
		}
		<-c2.Identified()
		time.Sleep(100 * time.Millisecond)
		frozen.Store(true)
		start = time.Now()
		_ = h.Close()
		if d := time.Since(start); d > 10*time.Millisecond {
			t.Errorf("Host.Close took %v, want it not to wait for the peer", d)
		}
		<-c2.Done()
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("the session closed %v after Host.Close, want the 2 s linger", d)
		}
		close(release)
		wg.Wait()
	})
}
