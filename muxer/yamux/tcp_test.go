package yamux

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/muxertest"
	"github.com/concordp2p/concord/network"
)

// The few tests over real loopback TCP sockets: the in-memory pipe is not
// hiding anything a kernel socket does differently (partial writes, FIN,
// deadlines on a real fd).

// tcpConnPair returns the two ends of a loopback TCP connection.
func tcpConnPair() (dialed, accepted net.Conn, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	type result struct {
		c   net.Conn
		err error
	}
	acc := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		acc <- result{c, err}
	}()
	d, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		ln.Close()
		<-acc
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	r := <-acc
	if r.err != nil {
		d.Close()
		return nil, nil, fmt.Errorf("accept: %w", r.err)
	}
	return d, r.c, nil
}

// tcpSessions returns an initiator and a responder session over a
// loopback TCP connection, closed when the test ends.
func tcpSessions(t *testing.T) (*session, *session) {
	t.Helper()
	d, a, err := tcpConnPair()
	if err != nil {
		t.Fatal(err)
	}
	return mustSession(t, Config{}, d, network.RoleInitiator), mustSession(t, Config{}, a, network.RoleResponder)
}

func TestTCPTransferBothWays(t *testing.T) {
	c, s := tcpSessions(t)
	const size = 8 << 20
	var wg sync.WaitGroup
	for i, ends := range [][2]*session{{c, s}, {s, c}} {
		x, y := openPair(t, ends[0], ends[1])
		data := randomData(uint64(100+i), size)
		want := sha256.Sum256(data)
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := x.Write(data); err != nil {
				t.Errorf("Write: %v", err)
			}
			if err := x.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			if n, err := io.Copy(h, y); n != size || err != nil {
				t.Errorf("read %d bytes, %v; want %d, nil", n, err, size)
			}
			if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
				t.Errorf("SHA-256 %x, want %x", got, want)
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx); err != nil {
		t.Errorf("Ping over TCP: %v", err)
	}
}

// TestTCPConformance runs the muxer conformance suite over loopback TCP.
func TestTCPConformance(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	muxertest.Run(t, func() (muxer.Session, muxer.Session, error) {
		d, a, err := tcpConnPair()
		if err != nil {
			return nil, nil, err
		}
		c, err := m.NewSession(d, network.RoleInitiator)
		if err != nil {
			d.Close()
			a.Close()
			return nil, nil, err
		}
		s, err := m.NewSession(a, network.RoleResponder)
		if err != nil {
			c.Close()
			a.Close()
			return nil, nil, err
		}
		return c, s, nil
	})
}
