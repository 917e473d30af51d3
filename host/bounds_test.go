package host

// Two documented bounds pinned on the fake clock: the hello timeout and
// the duplicate grace, at their defaults. The fault suite measures both
// between real processes (faults/bounds_test.go).

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

// timedLog records a host's events with the instant each arrived.
type timedLog struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	at time.Time
	e  Event
}

func (l *timedLog) observe(e Event) {
	l.mu.Lock()
	l.events = append(l.events, timedEvent{time.Now(), e})
	l.mu.Unlock()
}

// first returns the first event that matches, and when it arrived.
func (l *timedLog) first(match func(Event) bool) (timedEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, te := range l.events {
		if match(te.e) {
			return te, true
		}
	}
	return timedEvent{}, false
}

// writeTokens writes multistream-select messages: a uvarint length, the
// token, a newline.
func writeTokens(w io.Writer, toks ...string) error {
	var b []byte
	for _, t := range toks {
		b = binary.AppendUvarint(b, uint64(len(t)+1))
		b = append(b, t...)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

// TestHelloTimeout: a peer that stalls in both halves of the hello. It
// reads the host's hello proposal and never answers it, and it opens a
// hello stream of its own, has it accepted and never sends the message.
// The host gives up on each at the default HelloTimeout exactly, reports
// each as a HelloFailed event with ErrHelloTimeout, and closes both
// streams; the connection stays up.
func TestHelloTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var inAccepted, inEnded, outAgreed, outEnded time.Time
		f := newFakePeer(t, nil)
		f.raw = func(s muxer.Stream) {
			defer s.Reset()
			if _, err := multistream.ReadNextToken[string](s); err != nil {
				return
			}
			proto, err := multistream.ReadNextToken[string](s)
			if err != nil {
				return
			}
			if proto != HelloProtocolID {
				_ = writeTokens(s, "/multistream/1.0.0", "na") // identify: not served
				_, _ = io.Copy(io.Discard, s)
				return
			}
			mu.Lock()
			first := inAccepted.IsZero() // the host retries (HelloRetries): time the first
			if first {
				inAccepted = time.Now()
			}
			mu.Unlock()
			_, _ = io.Copy(io.Discard, s) // never answer; until the host gives up
			mu.Lock()
			if first {
				inEnded = time.Now()
			}
			mu.Unlock()
		}
		f.onConn = func(c *upgrader.Conn) {
			s, err := c.OpenStream(context.Background())
			if err != nil {
				return
			}
			defer s.Reset()
			if err := multistream.SelectProtoOrFail(HelloProtocolID, s); err != nil {
				return
			}
			mu.Lock()
			outAgreed = time.Now()
			mu.Unlock()
			_, _ = io.Copy(io.Discard, s) // never send the hello
			mu.Lock()
			outEnded = time.Now()
			mu.Unlock()
		}
		var log timedLog
		h := memHost(t, Config{Observer: log.observe}, f.dialer(t, &wg))
		c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultHelloTimeout + time.Second)
		for _, sending := range []bool{true, false} {
			te, ok := log.first(func(e Event) bool { hf, ok := e.(HelloFailed); return ok && hf.Sending == sending })
			if !ok {
				t.Fatalf("no HelloFailed event with Sending %v", sending)
			}
			hf := te.e.(HelloFailed)
			if !errors.Is(hf.Err, ErrHelloTimeout) || hf.Seq != c.Seq() || hf.Peer != f.id {
				t.Errorf("HelloFailed %+v, want ErrHelloTimeout for seq %d", hf, c.Seq())
			}
			if hf.Elapsed != DefaultHelloTimeout {
				t.Errorf("HelloFailed (Sending %v) after %v, want %v", sending, hf.Elapsed, DefaultHelloTimeout)
			}
		}
		mu.Lock()
		// As the peer sees it: the host's stream was accepted a pipe
		// delay after the host's clock started and ended a pipe delay
		// after it gave up; the peer's stream was agreed a pipe delay
		// after the host's handler started.
		in, out := inEnded.Sub(inAccepted), outEnded.Sub(outAgreed)
		mu.Unlock()
		for _, m := range []struct {
			what string
			d    time.Duration
		}{{"the host's hello stream", in}, {"the peer's hello stream", out}} {
			if m.d < DefaultHelloTimeout-5*time.Millisecond || m.d > DefaultHelloTimeout+5*time.Millisecond {
				t.Errorf("%s ended %v after the peer saw it start, want %v ± 5 ms", m.what, m.d, DefaultHelloTimeout)
			}
		}
		if c.IsClosed() {
			t.Error("the connection closed over a failed hello")
		}
		if _, _, ok := c.RemoteHello(); ok {
			t.Error("a hello was recorded")
		}
		closeAndWait(h)
		wg.Wait()
	})
}

// TestDuplicateGrace: a second connection between two hosts while the
// first carries an open stream. The first loses and drains: it closes at
// the default DuplicateGrace after the resolution, on both ends. Without
// a stream it closes at once.
func TestDuplicateGrace(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream bool
	}{{"stream open", true}, {"no stream", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var la, lb timedLog
				b := memHost(t, Config{Observer: lb.observe}, nil)
				b.SetStreamHandler("/test/hold", func(s *Stream) {
					defer s.Close()
					_, _ = io.Copy(io.Discard, s)
				})
				a := memHost(t, Config{Observer: la.observe}, pipeTo(b, nil))
				ctx := context.Background()
				c1, err := a.Connect(ctx, peerAt(b))
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond) // hellos exchanged
				if tc.stream {
					s, err := c1.NewStream(ctx, "/test/hold")
					if err != nil {
						t.Fatal(err)
					}
					defer s.Reset()
				}
				// A second connection, past Connect's reuse of the first.
				uc, err := a.dialAddr(ctx, b.ID(), fakeAddr)
				if err != nil {
					t.Fatal(err)
				}
				c2 := a.addConn(uc)
				time.Sleep(DefaultDuplicateGrace + 5*time.Second)

				// With a stream, each end resolves and drains for the grace.
				// Without one, the first to resolve closes at once, and the
				// other may see the go-away before its own hello resolves.
				var earliest time.Time
				for _, side := range []struct {
					name string
					log  *timedLog
				}{{"a", &la}, {"b", &lb}} {
					res, ok := side.log.first(func(e Event) bool { d, ok := e.(DuplicateResolved); return ok && d.ClosedSeq == 1 })
					if !ok && tc.stream {
						t.Fatalf("%s: no DuplicateResolved for connection 1", side.name)
					}
					if ok {
						if d := res.e.(DuplicateResolved); d.Immediate || d.SurvivorSeq != 2 || d.Rule != ResolvedBySequence {
							t.Errorf("%s: %+v, want connection 2 kept by sequence and 1 drained", side.name, d)
						}
						if earliest.IsZero() || res.at.Before(earliest) {
							earliest = res.at
						}
					}
					closed, cok := side.log.first(func(e Event) bool { c, ok := e.(ConnClosed); return ok && c.Seq == 1 })
					if !cok {
						t.Fatalf("%s: connection 1 never closed", side.name)
					}
					if reason := closed.e.(ConnClosed).Reason; ok && !errors.Is(reason, ErrDuplicate) {
						t.Errorf("%s: connection 1 closed with %v, want ErrDuplicate", side.name, reason)
					}
					if tc.stream {
						took := closed.at.Sub(res.at)
						if took < DefaultDuplicateGrace-5*time.Millisecond || took > DefaultDuplicateGrace+5*time.Millisecond {
							t.Errorf("%s: the loser with a stream closed %v after the resolution, want %v ± 5 ms", side.name, took, DefaultDuplicateGrace)
						}
						t.Logf("%s: loser closed %v after the resolution", side.name, took)
					}
				}
				for _, side := range []*timedLog{&la, &lb} {
					closed, _ := side.first(func(e Event) bool { c, ok := e.(ConnClosed); return ok && c.Seq == 1 })
					if took := closed.at.Sub(earliest); !tc.stream && (earliest.IsZero() || took > 50*time.Millisecond) {
						t.Errorf("the loser without a stream closed %v after the first resolution, want at once", took)
					}
				}
				if cs := a.Conns(b.ID()); len(cs) != 1 || cs[0] != c2 {
					t.Errorf("a holds %d connections, want connection 2 alone", len(cs))
				}
				if cs := b.Conns(a.ID()); len(cs) != 1 || cs[0].Seq() != 2 {
					t.Errorf("b holds %d connections, want its connection 2 alone", len(cs))
				}
			})
		})
	}
}

// TestHelloRetry: a peer that stalls the first hello stream the host opens
// (reads the proposal, never answers) and answers the next. The host
// reports the first failure, tries again within the backoff (base 1 s) of
// giving up, and the peer receives the hello; with HelloRetries < 0 it
// tries once.
func TestHelloRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retries int
		want    int // hello streams the peer sees
	}{{"default", 0, 2}, {"none", -1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var wg sync.WaitGroup
				var mu sync.Mutex
				var opened []time.Time
				var got *hello
				f := newFakePeer(t, nil)
				f.raw = func(s muxer.Stream) {
					defer s.Reset()
					if _, err := multistream.ReadNextToken[string](s); err != nil {
						return
					}
					proto, err := multistream.ReadNextToken[string](s)
					if err != nil {
						return
					}
					if proto != HelloProtocolID {
						_ = writeTokens(s, "/multistream/1.0.0", "na")
						_, _ = io.Copy(io.Discard, s)
						return
					}
					mu.Lock()
					opened = append(opened, time.Now())
					n := len(opened)
					mu.Unlock()
					if n == 1 {
						_, _ = io.Copy(io.Discard, s) // stall until the host gives up
						return
					}
					if err := writeTokens(s, "/multistream/1.0.0", HelloProtocolID); err != nil {
						return
					}
					if m, err := readHello(s); err == nil {
						mu.Lock()
						got = &m
						mu.Unlock()
					}
				}
				var log timedLog
				h := memHost(t, Config{Observer: log.observe, HelloRetries: tc.retries}, f.dialer(t, &wg))
				c, err := h.Connect(context.Background(), peer.AddrInfo{ID: f.id, Addrs: []ma.Multiaddr{fakeAddr}})
				if err != nil {
					t.Fatal(err)
				}
				time.Sleep(DefaultHelloTimeout + 2*time.Second)
				synctest.Wait()
				mu.Lock()
				n, first, hl := len(opened), opened, got
				mu.Unlock()
				if n != tc.want {
					t.Fatalf("the peer saw %d hello streams, want %d", n, tc.want)
				}
				if tc.want == 2 {
					if gap := first[1].Sub(first[0]); gap < DefaultHelloTimeout || gap > DefaultHelloTimeout+time.Second+5*time.Millisecond {
						t.Errorf("second attempt %v after the first, want HelloTimeout plus at most the 1 s base", gap)
					}
					if hl == nil || hl.Seq != c.Seq() {
						t.Errorf("the retried hello: %+v, want seq %d", hl, c.Seq())
					}
				}
				fails := 0
				log.mu.Lock()
				for _, te := range log.events {
					if hf, ok := te.e.(HelloFailed); ok && hf.Sending {
						fails++
					}
				}
				log.mu.Unlock()
				if fails != 1 {
					t.Errorf("%d HelloFailed events for the sending half, want 1", fails)
				}
				closeAndWait(h)
				wg.Wait()
			})
		})
	}
}
