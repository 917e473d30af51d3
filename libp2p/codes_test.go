package concordlibp2p

import (
	"context"
	"errors"
	"testing"
	"time"

	lnetwork "github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/transport"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
)

// connectMixed has a Concord transport dial a stock go-libp2p transport's
// listener and returns the Concord end and the stock end.
func connectMixed(t *testing.T, sec string) (concord, stock transport.CapableConn) {
	t.Helper()
	ct, _ := concordTransport(t, WithSecurity(sec))
	st, sid := stockTransport(t, sec)
	ln, err := st.Listen(ma.StringCast("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	accepted := make(chan transport.CapableConn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			t.Errorf("Accept: %v", err)
		}
		accepted <- c
	}()
	concord, err = ct.Dial(ctx, ln.Multiaddr(), sid)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	stock = <-accepted
	if stock == nil {
		t.FailNow()
	}
	t.Cleanup(func() { _ = concord.Close(); _ = stock.Close() })
	return concord, stock
}

// streamPair opens a stream on from, accepts it on to, and sends a byte
// each way.
func streamPair(t *testing.T, from, to transport.CapableConn) (lnetwork.MuxedStream, lnetwork.MuxedStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := from.OpenStream(ctx)
	if err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	if _, err := a.Write([]byte{1}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	b, err := to.AcceptStream()
	if err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	if _, err := b.Read(make([]byte, 1)); err != nil {
		t.Fatalf("Read: %v", err)
	}
	// and back, so that the accepting side's ACK has arrived: a stock
	// peer's close is an RST, which fails a write crossing it, and
	// go-yamux then ends the session with that error, not the go-away
	// read just before (two stock peers race the same way)
	if _, err := b.Write([]byte{1}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := a.Read(make([]byte, 1)); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return a, b
}

// readErr reads from s until it fails, within 10 s.
func readErr(s lnetwork.MuxedStream) error {
	_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := s.Read(buf); err != nil {
			return err
		}
	}
}

func wantStreamError(t *testing.T, what string, err error, remote bool, code lnetwork.StreamErrorCode) {
	t.Helper()
	var se *lnetwork.StreamError
	if !errors.As(err, &se) || se.Remote != remote || se.ErrorCode != code || !errors.Is(err, lnetwork.ErrReset) {
		t.Errorf("%s: got %v, want a network.StreamError with Remote %v and code %d", what, err, remote, code)
	}
}

func wantConnError(t *testing.T, what string, err error, remote bool, code lnetwork.ConnErrorCode) {
	t.Helper()
	var ce *lnetwork.ConnError
	if !errors.As(err, &ce) || ce.Remote != remote || ce.ErrorCode != code || !errors.Is(err, lnetwork.ErrReset) {
		t.Errorf("%s: got %v, want a network.ConnError with Remote %v and code %d", what, err, remote, code)
	}
}

// TestErrorCodesWithStock checks that the codes of ResetWithError and
// CloseWithError cross between the Concord transport and go-libp2p's
// stock TCP transport in both directions, and that each side reports the
// peer's code as go-libp2p does: network.StreamError and
// network.ConnError with Remote set.
func TestErrorCodesWithStock(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		t.Run(sec[1:], func(t *testing.T) {
			c, s := connectMixed(t, sec)

			a, b := streamPair(t, c, s)
			if err := a.ResetWithError(42); err != nil {
				t.Fatalf("Concord ResetWithError: %v", err)
			}
			wantStreamError(t, "stock stream after Concord's ResetWithError(42)", readErr(b), true, 42)

			a, b = streamPair(t, s, c)
			if err := a.ResetWithError(43); err != nil {
				t.Fatalf("stock ResetWithError: %v", err)
			}
			wantStreamError(t, "Concord stream after stock's ResetWithError(43)", readErr(b), true, 43)

			a, b = streamPair(t, c, s)
			if err := c.CloseWithError(44); err != nil {
				t.Fatalf("Concord CloseWithError: %v", err)
			}
			wantConnError(t, "stock stream after Concord's CloseWithError(44)", readErr(b), true, 44)
			_, err := s.AcceptStream()
			wantConnError(t, "stock AcceptStream after Concord's CloseWithError(44)", err, true, 44)
			wantConnError(t, "Concord stream after its own CloseWithError(44)", readErr(a), false, 44)
			if !c.IsClosed() {
				t.Error("Concord conn not closed after CloseWithError")
			}

			c, s = connectMixed(t, sec)
			_, b = streamPair(t, s, c)
			if err := s.CloseWithError(45); err != nil {
				t.Fatalf("stock CloseWithError: %v", err)
			}
			wantConnError(t, "Concord stream after stock's CloseWithError(45)", readErr(b), true, 45)
			_, err = c.AcceptStream()
			wantConnError(t, "Concord AcceptStream after stock's CloseWithError(45)", err, true, 45)
			deadline := time.Now().Add(5 * time.Second)
			for !c.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !c.IsClosed() {
				t.Error("Concord conn not closed 5 s after the peer's CloseWithError")
			}
		})
	}
}
