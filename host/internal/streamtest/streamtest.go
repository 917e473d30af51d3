// Package streamtest gives the tests of the host's stream protocols a pair
// of real yamux streams over an in-memory pipe, and a fake client stream.
package streamtest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen/simopentest"
)

// StreamPair returns the two ends of one yamux stream between two sessions
// over an in-memory pipe whose one-way delay is delay. The sessions close
// when the test ends.
func StreamPair(t testing.TB, delay time.Duration) (client, server muxer.Stream) {
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

// FakeStream plays a client that sends In and then closes its write side;
// what the server writes is collected in Out.
type FakeStream struct {
	In       *bytes.Reader
	Out      bytes.Buffer
	Closed   bool
	WasReset bool
}

// NewFakeStream returns a FakeStream that reads in.
func NewFakeStream(in []byte) *FakeStream { return &FakeStream{In: bytes.NewReader(in)} }

func (f *FakeStream) Read(p []byte) (int, error)  { return f.In.Read(p) }
func (f *FakeStream) Write(p []byte) (int, error) { return f.Out.Write(p) }
func (f *FakeStream) CloseWrite() error           { return nil }
func (f *FakeStream) Close() error                { f.Closed = true; return nil }
func (f *FakeStream) Reset() error                { f.WasReset = true; return nil }
func (f *FakeStream) SetDeadline(time.Time) error { return nil }
