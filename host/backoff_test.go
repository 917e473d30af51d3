package host

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
)

// errConnectTimeout is synPath's connect timeout.
var errConnectTimeout = errors.New("test: connect timed out")

// synSchedule is when a connect sends its SYN, from the connect's start:
// at once, then after Linux's initial RTO (1 s) four times over
// (tcp_syn_linear_timeouts, Linux 6.7 and later), then doubling.
var synSchedule = []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second, 6 * time.Second, 10 * time.Second}

// synPath is a dial function for synctest that behaves as a kernel's
// connect on a path that drops everything while it is down: a connect
// sends SYNs on synSchedule, connects (to the peer, through connect) when
// one is sent while the path is up, and fails after the transport's
// connect timeout.
type synPath struct {
	connect func(ctx context.Context, a ma.Multiaddr) (net.Conn, error)

	mu     sync.Mutex
	up     bool
	starts []time.Time // the connects' starts
}

func (p *synPath) setUp(up bool) {
	p.mu.Lock()
	p.up = up
	p.mu.Unlock()
}

func (p *synPath) isUp() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

func (p *synPath) attempts() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.starts...)
}

func (p *synPath) dial(ctx context.Context, a ma.Multiaddr) (net.Conn, error) {
	start := time.Now()
	p.mu.Lock()
	p.starts = append(p.starts, start)
	p.mu.Unlock()
	wait := func(until time.Time) error {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, at := range synSchedule {
		if at >= tcp.DefaultConnectTimeout {
			break
		}
		if err := wait(start.Add(at)); err != nil {
			return nil, err
		}
		if p.isUp() {
			return p.connect(ctx, a)
		}
	}
	if err := wait(start.Add(tcp.DefaultConnectTimeout)); err != nil {
		return nil, err
	}
	return nil, errConnectTimeout
}

// TestKeeperFindsReturningPath: a keeper that lost its peer over a path
// that drops everything (a blackhole, a dead link) finds the path within
// the kernel's SYN interval (1 s) of its return, for outages up to the
// four back-to-back connects the default backoff allows (~20 s): the
// connect that times out is followed at once, not after a backoff delay.
// The outages are chosen so that the path returns at every point of the
// connects' schedule, the last second before a connect times out
// included, where a SYN-less gap opened before.
func TestKeeperFindsReturningPath(t *testing.T) {
	const slack = 50 * time.Millisecond // the handshakes over the 1 ms pipe
	for outage := 300 * time.Millisecond; outage < 20*time.Second; outage += 250 * time.Millisecond {
		t.Run(fmt.Sprint(outage), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := memHost(t, Config{}, nil)
				path := &synPath{connect: pipeTo(b, nil)}
				a := memHost(t, Config{}, path.dial)
				a.KeepConnected(b.ID(), fakeAddr) // the path is down: the connection was just lost
				time.Sleep(outage)
				path.setUp(true)
				back := time.Now()
				for len(activeConns(a, b.ID())) == 0 {
					time.Sleep(time.Millisecond)
				}
				if d := time.Since(back); d > time.Second+slack {
					t.Errorf("connected %v after the path returned, want within the 1 s SYN interval; connects began at %v",
						d, sinceEach(back.Add(-outage), path.attempts()))
				}
				a.Forget(b.ID())
			})
		})
	}
}

// TestBackoffOfSilentPeer: against a peer that never answers, the keeper's
// connects follow each other at once while the backoff delay is shorter
// than the connect timeout, then spread out to BackoffCap/2 on average
// (half of each bound here): a SYN a second for the first ~20 s, then ever
// fewer, never a storm.
func TestBackoffOfSilentPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := memHost(t, Config{}, nil)
		path := &synPath{connect: pipeTo(b, nil)}
		var mu sync.Mutex
		var scheduled []BackoffScheduled
		a := memHost(t, Config{Observer: func(e Event) {
			if bs, ok := e.(BackoffScheduled); ok {
				mu.Lock()
				scheduled = append(scheduled, bs)
				mu.Unlock()
			}
		}}, path.dial)
		start := time.Now()
		a.KeepConnected(b.ID(), fakeAddr)
		time.Sleep(time.Hour)
		a.Forget(b.ID())

		s := time.Second
		// Delays (half the bound): 0.5, 1, 2, 4 s, each shorter than the
		// 5 s connect: back to back. Then 8, 16, 32, 64, 128 s from each
		// connect's start, then 150 s (half the 5 min cap).
		want := []time.Duration{0, 5 * s, 10 * s, 15 * s, 20 * s, 28 * s, 44 * s, 76 * s, 140 * s, 268 * s}
		for next := 268*s + 150*s; next < time.Hour; next += 150 * s {
			want = append(want, next)
		}
		got := sinceEach(start, path.attempts())
		for i := range got {
			got[i] = got[i].Round(10 * time.Millisecond) // the keeper's 1 ms between a failure and its redial
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("connects began at\n%v\nwant\n%v", got, want)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, bs := range scheduled[:4] {
			if failedAt := start.Add(want[i] + tcp.DefaultConnectTimeout); bs.Until.Sub(failedAt).Abs() > 10*time.Millisecond {
				t.Errorf("failure %d: blocked until +%v, want its own time +%v (no wait)", i+1, bs.Until.Sub(start), failedAt.Sub(start))
			}
		}
	})
}

// TestBackoffForgottenOnConnection: a connection to the peer, in either
// direction, ends the outage the failures were counted in; an address that
// failed while another address of the peer answered keeps backing off.
func TestBackoffForgottenOnConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var a *Host
		b := memHost(t, Config{}, func(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
			return pipeTo(a, nil)(ctx, addr)
		})
		toB := pipeTo(b, nil)
		bad := ma.StringCast("/ip4/10.99.0.2/tcp/4001")
		var refuseAll bool
		a = memHost(t, Config{}, func(ctx context.Context, addr ma.Multiaddr) (net.Conn, error) {
			if refuseAll || addr.Equal(bad) {
				return nil, errRefused
			}
			// Slower than the stagger (250 ms): the bad address, tried
			// next, fails while this one is under way.
			time.Sleep(300 * time.Millisecond)
			return toB(ctx, addr)
		})
		closeAll := func() {
			for _, c := range a.Conns(b.ID()) {
				_ = c.Close()
			}
			time.Sleep(10 * time.Second)
		}

		// a cannot reach b; b's dial to a ends the outage.
		refuseAll = true
		if _, err := a.Connect(ctx, peerAt(b)); !errors.Is(err, errRefused) {
			t.Fatalf("Connect = %v, want the refusal", err)
		}
		if bo := a.Backoff(b.ID()); len(bo) != 1 || bo[0].Failures != 1 {
			t.Fatalf("backoff after the failure: %+v", bo)
		}
		if _, err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{fakeAddr}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // a's side of the upgrade and its table
		if bo := a.Backoff(b.ID()); len(bo) != 0 {
			t.Errorf("backoff after the inbound connection: %+v, want none", bo)
		}
		closeAll()

		// Two addresses, one of them bad: its failures outlast the
		// connections the good one makes.
		refuseAll = false
		ai := peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{bad, fakeAddr}}
		for round := 1; round <= 3; round++ {
			time.Sleep(time.Minute) // past the bad address's backoff
			if _, err := a.Connect(ctx, ai); err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if _, err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{fakeAddr}}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second)
			bo := a.Backoff(b.ID())
			if len(bo) != 1 || !bo[0].Addr.Equal(bad) || bo[0].Failures != round || !bo[0].Elsewhere {
				t.Fatalf("round %d: backoff %+v, want the bad address with %d failures, Elsewhere", round, bo, round)
			}
			closeAll()
		}
	})
}

// sinceEach is each instant's offset from start.
func sinceEach(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, x := range ts {
		out[i] = x.Sub(start)
	}
	return out
}
