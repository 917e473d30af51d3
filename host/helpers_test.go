package host

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventLog collects a host's events.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) observe(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) count(match func(Event) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.events {
		if match(e) {
			n++
		}
	}
	return n
}

func isOpened(e Event) bool { _, ok := e.(ConnOpened); return ok }

// newHost starts a host on loopback with an echo handler.
func newHost(t testing.TB, cfg Config) *Host {
	t.Helper()
	if cfg.ListenAddrs == nil {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler("/test/echo", func(s *Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
		_ = s.CloseWrite()
	})
	return h
}

func echoOver(t testing.TB, h *Host, p peer.ID, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, p, "/test/echo")
	if err != nil {
		t.Fatalf("NewStream: %v", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}

// activeConns returns h's active connections to p.
func activeConns(h *Host, p peer.ID) []*Conn {
	var out []*Conn
	for _, c := range h.Conns(p) {
		if !c.Draining() && !c.IsClosed() {
			out = append(out, c)
		}
	}
	return out
}

// waitUntil polls cond on real time, bounded.
func waitUntil(t testing.TB, d time.Duration, cond func() bool) bool {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(2 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func noReuse() tcp.Config { return tcp.Config{DisableReuse: true} }

func mustKey(t testing.TB) peer.PrivKey {
	t.Helper()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// securityConfig is a host Config offering the security protocols ids.
func securityConfig(ids []string) Config {
	return Config{Upgrader: upgrader.Config{Security: upgrader.SecurityConfig{Protocols: ids}}}
}
