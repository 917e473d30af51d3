package ping

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen/simopentest"
)

// Both kinds of stream the package documents satisfy Stream.
var (
	_ Stream = muxer.Stream(nil)
	_ Stream = (*net.TCPConn)(nil)
)

// streamPair returns the two ends of one yamux stream between two sessions
// over an in-memory pipe whose one-way delay is delay. The sessions close
// when the test ends.
func streamPair(t testing.TB, delay time.Duration) (client, server muxer.Stream) {
	t.Helper()
	a, b := simopentest.Pipe(delay)
	m, err := yamux.New(yamux.Config{})
	if err != nil {
		t.Fatalf("yamux.New: %v", err)
	}
	ca, err := m.NewSession(a, network.RoleInitiator)
	if err != nil {
		t.Fatalf("NewSession(initiator): %v", err)
	}
	t.Cleanup(func() { _ = ca.Close() })
	cb, err := m.NewSession(b, network.RoleResponder)
	if err != nil {
		t.Fatalf("NewSession(responder): %v", err)
	}
	t.Cleanup(func() { _ = cb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if client, err = ca.OpenStream(ctx); err != nil {
		t.Fatalf("OpenStream: %v", err)
	}
	if server, err = cb.AcceptStream(ctx); err != nil {
		t.Fatalf("AcceptStream: %v", err)
	}
	return client, server
}

// fakeStream plays a client that sends in and then closes its write side;
// what the server writes is collected in out.
type fakeStream struct {
	in     *bytes.Reader
	out    bytes.Buffer
	closed bool
	reset  bool
}

func newFakeStream(in []byte) *fakeStream { return &fakeStream{in: bytes.NewReader(in)} }

func (f *fakeStream) Read(p []byte) (int, error)  { return f.in.Read(p) }
func (f *fakeStream) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *fakeStream) CloseWrite() error           { return nil }
func (f *fakeStream) Close() error                { f.closed = true; return nil }
func (f *fakeStream) Reset() error                { f.reset = true; return nil }
func (f *fakeStream) SetDeadline(time.Time) error { return nil }
