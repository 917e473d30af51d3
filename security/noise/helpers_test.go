package noise

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

var keyTypes = []peer.KeyType{peer.Ed25519, peer.Secp256k1, peer.ECDSA, peer.RSA}

// keys caches one identity key per (type, index): RSA generation is slow.
var keys sync.Map

func testKey(t testing.TB, kt peer.KeyType, i int) peer.PrivKey {
	t.Helper()
	type k struct {
		kt peer.KeyType
		i  int
	}
	if v, ok := keys.Load(k{kt, i}); ok {
		return v.(peer.PrivKey)
	}
	priv, err := peer.GenerateKey(kt, nil)
	if err != nil {
		t.Fatalf("GenerateKey(%v): %v", kt, err)
	}
	v, _ := keys.LoadOrStore(k{kt, i}, priv)
	return v.(peer.PrivKey)
}

func newTransport(t testing.TB, priv peer.PrivKey, cfg Config) *Transport {
	t.Helper()
	tr, err := New(priv, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

func idOf(t testing.TB, priv peer.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type result struct {
	conn security.Conn
	err  error
}

// handshakePair runs both sides of a handshake on c1 (initiator) and c2
// (responder) and returns both results.
func handshakePair(ctx context.Context, ti, tr security.Transport, c1, c2 net.Conn, pi, pr security.Params) (ri, rr result) {
	pi.Role, pr.Role = network.RoleInitiator, network.RoleResponder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rr.conn, rr.err = tr.Handshake(ctx, c2, pr)
	}()
	ri.conn, ri.err = ti.Handshake(ctx, c1, pi)
	wg.Wait()
	return ri, rr
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type acc struct {
		c   net.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acc{c, err}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		c1.Close()
		t.Fatal(a.err)
	}
	return c1, a.c
}

func pipePair(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }

// closeBoth closes the conns of both results, if any.
func closeBoth(rs ...result) {
	for _, r := range rs {
		if r.conn != nil {
			r.conn.Close()
		}
	}
}

// assertClosed checks that c was closed by the handshake: a write fails.
func assertClosed(t *testing.T, name string, c net.Conn) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Write([]byte{0})
	if err == nil || !(errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)) {
		t.Errorf("%s: write after failed handshake: got %v, want a closed-connection error", name, err)
	}
}
