package yamux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/muxer"
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

// TestShutdownWaitsForStreams: Shutdown returns as soon as the last
// stream handed to the application has ended on this side, in each way a
// stream can end, and not before; a stream the peer opens meanwhile is
// waited for once accepted, one never accepted does not hold it.
func TestShutdownWaitsForStreams(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		closed, _ := openPair(t, c, s)
		reset, _ := openPair(t, c, s)
		resetByPeer, peerEnd := openPair(t, c, s)
		start := time.Now()
		shutdown := make(chan error, 1)
		go func() { shutdown <- c.Shutdown(context.Background()) }()

		// The peer opens two streams while Shutdown waits; this side
		// accepts the first only.
		fromPeer, err := s.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		accepted, err := c.AcceptStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenStream(context.Background()); err != nil {
			t.Fatal(err)
		}

		steps := []func(){
			func() { closed.Close() },
			func() { reset.Reset() },
			func() {
				peerEnd.Reset()
				if _, err := resetByPeer.Read(make([]byte, 1)); !errors.Is(err, muxer.ErrStreamReset) {
					t.Errorf("Read of a stream the peer reset: got %v, want ErrStreamReset", err)
				}
			},
			func() {
				accepted.CloseWrite()
				fromPeer.Close()
				if _, err := io.ReadAll(accepted); err != nil {
					t.Errorf("ReadAll of the accepted stream: %v", err)
				}
			},
		}
		for i, step := range steps {
			time.Sleep(time.Second)
			synctest.Wait()
			select {
			case err := <-shutdown:
				t.Fatalf("Shutdown returned %v with %d streams still open", err, len(steps)-i)
			default:
			}
			step()
		}
		if err := <-shutdown; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if d := time.Since(start); d != time.Duration(len(steps))*time.Second {
			t.Errorf("Shutdown took %v, want %v: until the last stream ended", d, time.Duration(len(steps))*time.Second)
		}
	})
}

// slowConn reads 16 KiB a second: a slow link.
type slowConn struct{ net.Conn }

func (c slowConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p[:min(len(p), 16<<10)])
	time.Sleep(time.Duration(n) * time.Second / (16 << 10))
	return n, err
}

// TestShutdownSlowPeer: the data queued before the go-away takes many
// lingers to cross a slow link; Shutdown still reports delivery and the
// peer reads every byte. The linger runs from when the go-away is written
// to the connection, not from when it is queued.
func TestShutdownSlowPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(16 << 10)
		c := mustSession(t, Config{}, a, network.RoleInitiator)
		s := mustSession(t, Config{}, slowConn{b}, network.RoleResponder)
		msg := randomData(3, 200<<10) // under the initial window: queued at once
		got := make(chan []byte, 1)
		go func() {
			st, err := s.AcceptStream(context.Background())
			if err != nil {
				t.Errorf("AcceptStream: %v", err)
				got <- nil
				return
			}
			b, _ := io.ReadAll(st)
			got <- b
		}()
		st, err := c.OpenStream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Write(msg); err != nil {
			t.Fatal(err)
		}
		st.Close()
		start := time.Now()
		if err := c.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if d := time.Since(start); d < 4*shutdownLinger {
			t.Errorf("Shutdown took %v; the test needs the link to take several lingers", d)
		}
		if b := <-got; !bytes.Equal(b, msg) {
			t.Errorf("peer read %d of %d bytes", len(b), len(msg))
		}
	})
}

// TestShutdownAsyncBlackholedPeer: against a peer that never answers the
// go-away, ShutdownAsync returns as soon as the go-away is written, and
// the session still closes, on its own, exactly one linger later.
func TestShutdownAsyncBlackholedPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := newPipe(pipeCapacity)
		defer b.Close() // nobody reads b: a blackhole
		c := mustSession(t, Config{}, a, network.RoleInitiator)
		start := time.Now()
		if err := c.ShutdownAsync(context.Background()); err != nil {
			t.Fatalf("ShutdownAsync: %v", err)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("ShutdownAsync took %v, want no wait", d)
		}
		if c.IsClosed() {
			t.Fatal("closed before the linger")
		}
		if _, err := c.OpenStream(context.Background()); err == nil {
			t.Error("OpenStream succeeded after ShutdownAsync")
		}
		<-c.Done()
		if d := time.Since(start); d != shutdownLinger {
			t.Errorf("closed after %v, want the linger %v", d, shutdownLinger)
		}
	})
}

// TestShutdownAsyncDelivers: write, close the stream, ShutdownAsync: it
// returns before the peer has closed, and the peer still reads every
// byte; the session closes when the peer does, without the linger.
func TestShutdownAsyncDelivers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		a, b := openPair(t, c, s)
		msg := randomData(5, 64<<10)
		got := make(chan []byte, 1)
		go func() {
			r, _ := io.ReadAll(b)
			got <- r
		}()
		if _, err := a.Write(msg); err != nil {
			t.Fatal(err)
		}
		_ = a.Close()
		start := time.Now()
		if err := c.ShutdownAsync(context.Background()); err != nil {
			t.Fatalf("ShutdownAsync: %v", err)
		}
		<-c.Done()
		if d := time.Since(start); d >= shutdownLinger {
			t.Errorf("closed after %v: the linger ran although the peer closed", d)
		}
		if r := <-got; !bytes.Equal(r, msg) {
			t.Errorf("peer read %d of %d bytes", len(r), len(msg))
		}
	})
}

// TestShutdownAsyncDeadPeer: a session whose peer is gone is closed at
// once, with no goroutine left to linger.
func TestShutdownAsyncDeadPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, s := newSessions(t, Config{}, Config{})
		_ = s.Close()
		<-c.Done()
		if err := c.ShutdownAsync(context.Background()); err == nil {
			t.Error("ShutdownAsync of a closed session reported no error")
		}
		synctest.Wait() // a lingering goroutine would keep the bubble busy past here
	})
}
