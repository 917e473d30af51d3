package host

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// legacyPeer is a peer without the hello protocol, as go-libp2p and
// js-libp2p are: a bare upgrader whose connections answer "na" to every
// stream protocol Concord proposes. yamux answers the probe's ping.
type legacyPeer struct {
	t  *testing.T
	u  *upgrader.Upgrader
	tr *tcp.Transport
}

func newLegacyPeer(t *testing.T) *legacyPeer {
	u, err := upgrader.New(upgrader.Config{Identity: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &legacyPeer{t: t, u: u, tr: tcp.New(noReuse())}
}

// dial makes one connection to h and serves it with an empty multistream
// muxer until it ends.
func (l *legacyPeer) dial(h *Host) *upgrader.Conn {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, err := l.tr.Dial(ctx, h.Addrs()[0])
	if err != nil {
		l.t.Fatal(err)
	}
	c, err := l.u.Upgrade(ctx, raw, network.DirOutbound, h.ID())
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { _ = c.Close() })
	none := multistream.NewMultistreamMuxer[string]()
	go func() {
		for {
			s, err := c.AcceptStream(context.Background())
			if err != nil {
				return
			}
			go func() {
				defer s.Reset()
				_ = none.Handle(s) // answers na, fails when the peer gives up
			}()
		}
	}()
	return c
}

// hold opens a stream on c to h's /test/hold handler and leaves it open.
func (l *legacyPeer) hold(c *upgrader.Conn) muxer.Stream {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.OpenStream(ctx)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := multistream.SelectProtoOrFail("/test/hold", s); err != nil {
		l.t.Fatal(err)
	}
	return s
}

// newHoldHost is a host whose /test/hold handler reads until EOF, so a
// stream stays open as long as its opener keeps it.
func newHoldHost(t *testing.T) *Host {
	h := newHost(t, Config{TCP: noReuse(), DuplicateGrace: 5 * time.Second})
	h.SetStreamHandler("/test/hold", func(s *Stream) {
		defer s.Close()
		_, _ = io.Copy(io.Discard, s)
	})
	return h
}

// legacyOutcome waits until h holds one active connection to p and the
// loser's session has ended on the legacy side, and returns which of the
// legacy peer's connections survived.
func legacyOutcome(t *testing.T, h *Host, p peer.ID, older, newer *upgrader.Conn) *upgrader.Conn {
	t.Helper()
	var survivor, loser *upgrader.Conn
	ok := waitUntil(t, 5*time.Second, func() bool {
		switch {
		case older.IsClosed() && !newer.IsClosed():
			survivor, loser = newer, older
		case newer.IsClosed() && !older.IsClosed():
			survivor, loser = older, newer
		default:
			return false
		}
		return len(h.Conns(p)) == 1 && len(activeConns(h, p)) == 1
	})
	if !ok {
		t.Fatalf("no single survivor: older closed %v, newer closed %v; host holds %d connections, %d active",
			older.IsClosed(), newer.IsClosed(), len(h.Conns(p)), len(activeConns(h, p)))
	}
	if got := activeConns(h, p)[0]; !got.RemoteMultiaddr().Equal(survivor.LocalMultiaddr()) {
		t.Fatalf("host kept %s, the legacy peer kept %s", got.RemoteMultiaddr(), survivor.LocalMultiaddr())
	}
	if err := loser.Err(); err == nil {
		t.Fatal("the loser is closed but reports no error")
	}
	return survivor
}

// TestLegacyTieKeepsNewest: two connections from a legacy peer with no
// streams open: the newest survives, as go-libp2p would pick it for its
// next stream.
func TestLegacyTieKeepsNewest(t *testing.T) {
	h := newHoldHost(t)
	l := newLegacyPeer(t)
	older := l.dial(h)
	// The dialer's upgrade ends before the host's: let the host table the
	// first connection before the second, or its order can be the other.
	if !waitUntil(t, 5*time.Second, func() bool { return len(h.Conns(l.u.LocalPeer())) == 1 }) {
		t.Fatal("the host did not take the first connection")
	}
	newer := l.dial(h)
	if got := legacyOutcome(t, h, l.u.LocalPeer(), older, newer); got != newer {
		t.Fatal("the older connection survived a tie")
	}
}

// TestLegacyMostStreamsSurvives: the older connection carries two open
// streams and the newer none: the older survives, as go-libp2p prefers the
// connection with the most streams, and its streams are not disturbed.
func TestLegacyMostStreamsSurvives(t *testing.T) {
	h := newHoldHost(t)
	l := newLegacyPeer(t)
	older := l.dial(h)
	s1, s2 := l.hold(older), l.hold(older)
	defer s1.Close()
	defer s2.Close()
	newer := l.dial(h)
	if got := legacyOutcome(t, h, l.u.LocalPeer(), older, newer); got != older {
		t.Fatal("the connection with fewer streams survived")
	}
	for _, s := range []muxer.Stream{s1, s2} {
		if _, err := s.Write([]byte("still here")); err != nil {
			t.Fatalf("a stream on the survivor failed: %v", err)
		}
	}
}
