package yamux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
)

// TestShutdownDeliversClosedStreams: write, close the stream, shut the
// session down at once; the peer must read every byte and then EOF. This
// is the sequence in which go-libp2p lost 48 of 48 messages.
func TestShutdownDeliversClosedStreams(t *testing.T) {
	const iterations = 200
	msg := randomData(7, 100<<10) // under the initial window: the Write does not wait for the reader
	for i := range iterations {
		c, s := tcpSessions(t)
		type read struct {
			b   []byte
			err error
		}
		got := make(chan read, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st, err := s.AcceptStream(ctx)
			if err != nil {
				got <- read{nil, fmt.Errorf("accept: %w", err)}
				return
			}
			// Acknowledge the stream, as a protocol negotiation would.
			if _, err := st.Write([]byte{1}); err != nil {
				got <- read{nil, fmt.Errorf("ack: %w", err)}
				return
			}
			b, err := io.ReadAll(st)
			_ = st.Close()
			got <- read{b, err}
		}()
		st, err := c.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// Only streams the peer accepted can be delivered (see Shutdown):
		// wait for its acknowledgement, as multistream-select does.
		if _, err := st.Write(msg[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
			t.Fatalf("iteration %d: ack: %v", i, err)
		}
		if _, err := st.Write(msg[1:]); err != nil {
			t.Fatalf("iteration %d: write: %v", i, err)
		}
		if err := st.Close(); err != nil {
			t.Fatalf("iteration %d: close stream: %v", i, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = c.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Fatalf("iteration %d: Shutdown: %v", i, err)
		}
		if r := <-got; !bytes.Equal(r.b, msg) {
			t.Fatalf("iteration %d: peer read %d of %d bytes: %v", i, len(r.b), len(msg), r.err)
		}
		if !c.IsClosed() {
			t.Fatalf("iteration %d: session open after Shutdown", i)
		}
		_ = s.Close()
	}
}

func TestShutdownDeadPeerClosesAtOnce(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	_ = s.conn.Close()
	<-c.Done() // c has seen its peer go
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Shutdown(ctx); err == nil {
		t.Error("Shutdown of a closed session reported delivery")
	}
}

// TestShutdownBlackholedPeer: a peer that is gone without closing never
// answers the go-away; Shutdown closes after its linger and says delivery
// is unconfirmed.
func TestShutdownBlackholedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(pipeCapacity)
		defer b.Close() // nobody reads b: a blackhole
		c := mustSession(t, Config{}, a, network.RoleInitiator)
		start := time.Now()
		err := c.Shutdown(context.Background())
		if !errors.Is(err, errUnconfirmed) {
			t.Errorf("Shutdown = %v, want delivery unconfirmed", err)
		}
		if d := time.Since(start); d != shutdownLinger {
			t.Errorf("Shutdown took %v, want the linger %v", d, shutdownLinger)
		}
		if !c.IsClosed() {
			t.Error("session open after Shutdown")
		}
	})
}

// TestShutdownBoundedByContext: a stream the peer never closes holds
// Shutdown only until ctx ends; then the session closes anyway.
func TestShutdownBoundedByContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, _ := openPair(t, c, s)
		_ = a.CloseWrite() // the peer never closes its side
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		if err := c.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown = %v, want the context's deadline", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("Shutdown returned after %v, want 3s", d)
		}
		if !c.IsClosed() {
			t.Error("session open after Shutdown")
		}
	})
}

// TestShutdownNeverCutsAcceptedStreams: the peer opens echo streams one
// after another, with several in flight, while this side shuts down. A
// stream this side accepts must complete; the peer's streams that cross
// the go-away are refused before they reach this side. Without the hold
// around the last stream check and the go-away, a stream arriving between
// the two was accepted and then cut by the peer's close.
func TestShutdownNeverCutsAcceptedStreams(t *testing.T) {
	const (
		iterations = 300
		openers    = 4
	)
	began := time.Now()
	var accepted, completed, refused int
	for i := range iterations {
		if i >= 20 && time.Since(began) > 10*time.Second {
			break
		}
		c, s := tcpSessions(t)
		var handlers sync.WaitGroup
		var cut atomic.Int32
		handlers.Go(func() {
			for {
				st, err := c.AcceptStream(context.Background())
				if err != nil {
					return
				}
				accepted++
				handlers.Go(func() {
					defer st.Close()
					b, err := io.ReadAll(st)
					if err == nil {
						_, err = st.Write(b)
					}
					if err == nil {
						err = st.CloseWrite()
					}
					if err != nil {
						cut.Add(1)
					}
				})
			}
		})
		var peers sync.WaitGroup
		var ok, failed atomic.Int32
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		for range openers {
			peers.Go(func() {
				for n := 0; n < 1000 && ctx.Err() == nil; n++ {
					if err := echoOnce(ctx, s, []byte("ping")); err != nil {
						failed.Add(1)
						return
					}
					ok.Add(1)
				}
			})
		}
		// Shut down while streams come and go.
		for ok.Load() < int32(i%7+1) && ctx.Err() == nil {
			runtime.Gosched()
		}
		err := c.Shutdown(ctx)
		peers.Wait()
		cancel()
		_ = s.Close()
		handlers.Wait()
		if err != nil {
			t.Fatalf("iteration %d: Shutdown: %v", i, err)
		}
		if n := cut.Load(); n > 0 {
			t.Fatalf("iteration %d: %d streams accepted by the shutting-down side were cut", i, n)
		}
		completed += int(ok.Load())
		refused += int(failed.Load())
	}
	t.Logf("%d streams accepted by the shutting-down side, %d completed; %d refused by the go-away", accepted, completed, refused)
	if completed != accepted {
		t.Errorf("%d streams accepted but %d completed", accepted, completed)
	}
}

// echoOnce opens a stream on s, writes msg, and expects it back.
func echoOnce(ctx context.Context, s *session, msg []byte) error {
	st, err := s.OpenStream(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Write(msg); err != nil {
		return err
	}
	if err := st.CloseWrite(); err != nil {
		return err
	}
	got, err := io.ReadAll(st)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}
