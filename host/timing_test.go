package host

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/concordp2p/concord/upgrader"
)

// halfJitter makes every backoff delay exactly half its bound.
type halfJitter struct{}

func (halfJitter) Int64N(n int64) int64 { return n / 2 }

var errRefused = errors.New("test: connection refused")

// memHost is a host without sockets, for synctest: its dials go through
// dial, which the test controls.
func memHost(t *testing.T, cfg Config, dial func(ctx context.Context, a ma.Multiaddr) (net.Conn, error)) *Host {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.jitter = halfJitter{}
	if dial != nil {
		h.dialRaw = dial
	}
	t.Cleanup(func() { closeAndWait(h) })
	return h
}

// closeAndWait closes h and waits until the sessions of its connections
// have closed: Close leaves their lingers to the background, and a synctest
// bubble must not end while one runs.
func closeAndWait(h *Host) {
	h.mu.Lock()
	var conns []*Conn
	for _, ps := range h.peers {
		conns = append(conns, ps.conns...)
	}
	h.mu.Unlock()
	_ = h.Close()
	for _, c := range conns {
		<-c.Done()
	}
}

// pipeTo returns a dial function that connects to b over an in-memory
// pipe, b accepting and upgrading as its listener would. wrap, if not
// nil, wraps both ends.
func pipeTo(b *Host, wrap func(net.Conn) net.Conn) func(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
	return func(ctx context.Context, _ ma.Multiaddr) (net.Conn, error) {
		var x, y net.Conn
		x, y = simopentest.Pipe(time.Millisecond)
		if wrap != nil {
			x, y = wrap(x), wrap(y)
		}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if c, err := b.up.Upgrade(b.ctx, y, network.DirInbound, ""); err == nil {
				b.addConn(c)
			}
		}()
		return x, nil
	}
}

var fakeAddr = ma.StringCast("/ip4/10.99.0.1/tcp/4001")

func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memHost(t, Config{}, nil)
		var attempts atomic.Int32
		var succeed atomic.Bool
		pipe := pipeTo(b, nil)
		a := memHost(t, Config{BackoffBase: time.Second, BackoffCap: 8 * time.Second},
			func(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
				attempts.Add(1)
				if succeed.Load() {
					return pipe(ctx, addr)
				}
				return nil, errRefused
			})
		ai := b.AddrInfo()
		ai.Addrs = append(ai.Addrs, fakeAddr)
		ctx := context.Background()

		// Failure n blocks the address for half of min(cap, base·2^(n-1)).
		wantDelays := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
		for n, want := range wantDelays {
			start := time.Now()
			if _, err := a.Connect(ctx, ai); !errors.Is(err, errRefused) {
				t.Fatalf("dial %d: %v, want the refusal", n+1, err)
			}
			bo := a.Backoff(b.ID())
			if len(bo) != 1 || bo[0].Failures != n+1 || bo[0].Until.Sub(start) != want {
				t.Fatalf("after failure %d: backoff %+v, want %d failures until +%v", n+1, bo, n+1, want)
			}
			// Inside the backoff, Connect fails at once without dialing.
			before := attempts.Load()
			_, err := a.Connect(ctx, ai)
			var de *DialError
			if !errors.Is(err, ErrBackoff) || !errors.As(err, &de) || !de.Retry.Equal(bo[0].Until) {
				t.Fatalf("Connect during backoff = %v, want ErrBackoff until %v", err, bo[0].Until)
			}
			if attempts.Load() != before {
				t.Fatal("Connect during backoff dialed")
			}
			time.Sleep(want)
		}
		// ForceDial ignores the backoff; success clears it.
		succeed.Store(true)
		if _, err := a.ForceDial(ctx, ai); err != nil {
			t.Fatalf("ForceDial: %v", err)
		}
		if bo := a.Backoff(b.ID()); len(bo) != 0 {
			t.Errorf("backoff after success = %+v, want none", bo)
		}
	})
}

func TestKeepConnectedRedials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memHost(t, Config{}, nil)
		pipe := pipeTo(b, nil)
		var failures atomic.Int32
		failures.Store(3)
		a := memHost(t, Config{BackoffBase: time.Second, BackoffCap: time.Minute},
			func(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
				if failures.Add(-1) >= 0 {
					return nil, errRefused
				}
				return pipe(ctx, addr)
			})
		start := time.Now()
		a.KeepConnected(b.ID(), fakeAddr)
		for len(activeConns(a, b.ID())) == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		// Three failures: backoffs of 0.5 s, 1 s and 2 s, then success.
		if d := time.Since(start); d < 3500*time.Millisecond || d > 3600*time.Millisecond {
			t.Errorf("connected after %v, want 3.5 s of backoff (plus a round trip)", d)
		}
		// The peer closes the connection: the keeper dials again at once.
		for _, c := range b.Conns(a.ID()) {
			_ = c.Close()
		}
		synctest.Wait()
		lost := time.Now()
		for len(activeConns(a, b.ID())) == 0 || activeConns(a, b.ID())[0].Seq() != 2 {
			time.Sleep(10 * time.Millisecond)
		}
		if d := time.Since(lost); d > 100*time.Millisecond {
			t.Errorf("redial took %v", d)
		}
		a.Forget(b.ID())
		for _, c := range a.Conns(b.ID()) {
			_ = c.Close()
		}
		synctest.Wait()
		time.Sleep(time.Minute)
		if n := len(a.Conns(b.ID())); n != 0 {
			t.Errorf("after Forget, %d connections came back", n)
		}
	})
}

// holeConn drops everything written once its hole is open.
type holeConn struct {
	net.Conn
	hole *atomic.Bool
}

func (c holeConn) Write(p []byte) (int, error) {
	if c.hole.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		yamux yamux.Config
		bound time.Duration
	}{
		{"defaults", yamux.Config{}, 20 * time.Second},
		{"fast", yamux.Config{KeepAliveInterval: 500 * time.Millisecond, PingTimeout: 500 * time.Millisecond}, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var hole atomic.Bool
				b := memHost(t, Config{Upgrader: upgrader.Config{Muxer: upgrader.MuxerConfig{Yamux: tc.yamux}}}, nil)
				closed := make(chan ConnClosed, 4)
				var keepaliveEvents atomic.Int32
				a := memHost(t, Config{Upgrader: upgrader.Config{Muxer: upgrader.MuxerConfig{Yamux: tc.yamux}}, Observer: func(e Event) {
					if c, ok := e.(ConnClosed); ok {
						closed <- c
					}
					if _, ok := e.(KeepaliveFailed); ok {
						keepaliveEvents.Add(1)
					}
				}}, pipeTo(b, func(c net.Conn) net.Conn { return holeConn{c, &hole} }))
				if _, err := a.Connect(context.Background(), peerAt(b)); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Second) // hellos exchanged, idle
				hole.Store(true)
				start := time.Now()
				ev := <-closed
				d := time.Since(start)
				if d > tc.bound {
					t.Errorf("silent peer detected after %v, want within %v", d, tc.bound)
				}
				if !errors.Is(ev.Reason, muxer.ErrKeepaliveTimeout) {
					t.Errorf("close reason %v, want a keepalive timeout", ev.Reason)
				}
				if n := len(a.Conns(b.ID())); n != 0 {
					t.Errorf("%d connections left in the table", n)
				}
				if n := keepaliveEvents.Load(); n != 1 {
					t.Errorf("%d KeepaliveFailed events, want 1", n)
				}
				t.Logf("detected after %v (bound %v)", d, tc.bound)
			})
		})
	}
}

// peerAt is b's identity at the fake address the test's dial function
// serves.
func peerAt(b *Host) peer.AddrInfo {
	return peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{fakeAddr}}
}

// TestRedialAfterCrossingWithoutSimopen: the first dial meets a peer that
// dialed too and has no simopen (it sends its own proposal, as go-libp2p
// does, and closes on reading ours); Connect fails that attempt at once
// and redials after the tie backoff's jittered delay (half of 50 ms here),
// and the redial, an ordinary dial, connects. No address backoff remains.
func TestRedialAfterCrossingWithoutSimopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memHost(t, Config{}, nil)
		pipe := pipeTo(b, nil)
		var dials atomic.Int32
		var crossedAt, redialAt time.Time
		var log eventLog
		a := memHost(t, Config{Observer: log.observe}, func(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
			if dials.Add(1) > 1 {
				redialAt = time.Now()
				return pipe(ctx, addr)
			}
			x, y := simopentest.Pipe(time.Millisecond)
			go func() {
				// A multistream-select dialer: header and proposal in one
				// write, then it reads the header and expects the echo.
				_, _ = y.Write([]byte("\x13/multistream/1.0.0\n\x07/noise\n"))
				_, _ = y.Read(make([]byte, 128))
				_ = y.Close()
			}()
			crossedAt = time.Now()
			return x, nil
		})
		start := time.Now()
		_, err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{fakeAddr}})
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
		if dials.Load() != 2 {
			t.Fatalf("%d dials, want 2", dials.Load())
		}
		// The failed attempt took the pipe's one-way delay (1 ms) to read
		// the peer's proposal; the redial waited half the 50 ms bound.
		if d := redialAt.Sub(crossedAt); d != time.Millisecond+25*time.Millisecond {
			t.Errorf("redial %v after the crossing, want 26 ms", d)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("Connect took %v", d)
		}
		if bo := a.Backoff(b.ID()); len(bo) != 0 {
			t.Errorf("address backoff %+v after success", bo)
		}
		var crossed bool
		for _, e := range log.events {
			if ue, ok := e.(UpgradeEvent); ok {
				if f, ok := ue.Event.(upgrader.UpgradeFinished); ok && errors.Is(f.Err, upgrader.ErrPeerWithoutSimopen) {
					crossed = true
				}
			}
		}
		if !crossed {
			t.Error("no upgrade failed with ErrPeerWithoutSimopen")
		}
	})
}
