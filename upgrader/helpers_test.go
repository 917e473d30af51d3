package upgrader

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/simopen/simopentest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newKey(t testing.TB) peer.PrivKey {
	t.Helper()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newUpgrader(t testing.TB, cfg Config) *Upgrader {
	t.Helper()
	if cfg.Identity == nil {
		cfg.Identity = newKey(t)
	}
	u, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return u
}

type upgradeResult struct {
	c   *Conn
	err error
}

// upgradePair upgrades both ends of a conn pair concurrently.
func upgradePair(ctx context.Context, ua, ub *Upgrader, ca, cb net.Conn, da, db network.Direction, ea, eb peer.ID) (ra, rb upgradeResult) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ra.c, ra.err = ua.Upgrade(ctx, ca, da, ea) }()
	go func() { defer wg.Done(); rb.c, rb.err = ub.Upgrade(ctx, cb, db, eb) }()
	wg.Wait()
	return ra, rb
}

func closeAll(rs ...upgradeResult) {
	for _, r := range rs {
		if r.c != nil {
			_ = r.c.Close()
		}
	}
}

// checkEcho opens a stream on a, writes msg, and expects b to echo it.
func checkEcho(t *testing.T, a, b *Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		s, err := b.AcceptStream(ctx)
		if err != nil {
			errc <- err
			return
		}
		defer s.Close()
		buf, err := io.ReadAll(s)
		if err != nil {
			errc <- err
			return
		}
		if _, err := s.Write(buf); err != nil {
			errc <- err
			return
		}
		errc <- s.CloseWrite()
	}()
	s, err := a.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatalf("reading echo: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	if err := <-errc; err != nil {
		t.Fatalf("echo side: %v", err)
	}
}

// stripMuxers wraps a security transport and offers no muxers inside the
// handshake, forcing the muxer to be negotiated with multistream-select.
type stripMuxers struct{ security.Transport }

func (s stripMuxers) Handshake(ctx context.Context, raw net.Conn, p security.Params) (security.Conn, error) {
	p.Muxers = nil
	return s.Transport.Handshake(ctx, raw, p)
}

// silentPeer reads and discards everything and never writes.
func silentPeer(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
}

// pipe is a buffered in-memory conn pair with one-way delay d.
func pipe(d time.Duration) (net.Conn, net.Conn) {
	a, b := simopentest.Pipe(d)
	return a, b
}

func mustStage(t *testing.T, err error, stage Stage, target error) {
	t.Helper()
	var ue *Error
	if !errors.As(err, &ue) {
		t.Fatalf("error %v (%T) is not an *upgrader.Error", err, err)
	}
	if ue.Stage != stage {
		t.Errorf("stage = %v, want %v (error: %v)", ue.Stage, stage, err)
	}
	if target != nil && !errors.Is(err, target) {
		t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
	}
}
