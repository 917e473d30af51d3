package security

import (
	"context"
	"net"
	"sync"
	"testing"

	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpsec "github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/net/upgrader"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

var keyTypes = []int{lpcrypto.Ed25519, lpcrypto.Secp256k1, lpcrypto.ECDSA, lpcrypto.RSA}

func keyTypeName(t int) string {
	return map[int]string{lpcrypto.Ed25519: "Ed25519", lpcrypto.Secp256k1: "Secp256k1", lpcrypto.ECDSA: "ECDSA", lpcrypto.RSA: "RSA"}[t]
}

// identity is one key in both libraries' types, made by go-libp2p.
type identity struct {
	lp   lpcrypto.PrivKey
	ours peer.PrivKey
	id   peer.ID
}

var identities sync.Map

// newIdentity generates a key with go-libp2p (cached per type and index)
// and converts it to Concord's type through the protobuf encoding.
func newIdentity(t testing.TB, kt, i int) identity {
	t.Helper()
	type k struct{ kt, i int }
	if v, ok := identities.Load(k{kt, i}); ok {
		return v.(identity)
	}
	bits := 0
	if kt == lpcrypto.RSA {
		bits = 2048
	}
	lp, _, err := lpcrypto.GenerateKeyPair(kt, bits)
	if err != nil {
		t.Fatal(err)
	}
	b, err := lpcrypto.MarshalPrivateKey(lp)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := peer.UnmarshalPrivateKey(b)
	if err != nil {
		t.Fatalf("Concord cannot read go-libp2p's %s private key: %v", keyTypeName(kt), err)
	}
	lpid, err := lppeer.IDFromPrivateKey(lp)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(ours.Public())
	if err != nil {
		t.Fatal(err)
	}
	if string(id) != string(lpid) {
		t.Fatalf("%s: Concord derives peer ID %s, go-libp2p %s", keyTypeName(kt), id, lpid)
	}
	v, _ := identities.LoadOrStore(k{kt, i}, identity{lp: lp, ours: ours, id: id})
	return v.(identity)
}

func lpMuxers(ids []string) []upgrader.StreamMuxer {
	var m []upgrader.StreamMuxer
	for _, id := range ids {
		m = append(m, upgrader.StreamMuxer{ID: lpProtocol(id)})
	}
	return m
}

// lpTransport is the part of go-libp2p's security transports the tests use.
type lpTransport interface {
	SecureInbound(ctx context.Context, insecure net.Conn, p lppeer.ID) (lpsec.SecureConn, error)
	SecureOutbound(ctx context.Context, insecure net.Conn, p lppeer.ID) (lpsec.SecureConn, error)
}

type outcome struct {
	oursConn security.Conn
	oursErr  error
	lpConn   lpsec.SecureConn
	lpErr    error
}

// close closes both ends at once: over a synchronous pipe a TLS
// close_notify waits for the peer's read.
func (o outcome) close() {
	var wg sync.WaitGroup
	if o.oursConn != nil {
		wg.Go(func() { o.oursConn.Close() })
	}
	if o.lpConn != nil {
		wg.Go(func() { o.lpConn.Close() })
	}
	wg.Wait()
}

// run handshakes Concord (as ourRole) against go-libp2p over a pipe. Each
// side expects the other's peer ID (go-libp2p's outbound side requires it).
func run(ctx context.Context, ours security.Transport, lp lpTransport, ourRole network.Role, oursExpect peer.ID, lpExpect lppeer.ID, muxers []string, c1, c2 net.Conn) outcome {
	var o outcome
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if ourRole == network.RoleInitiator {
			o.lpConn, o.lpErr = lp.SecureInbound(ctx, c2, lpExpect)
		} else {
			o.lpConn, o.lpErr = lp.SecureOutbound(ctx, c2, lpExpect)
		}
		if o.lpErr != nil {
			c2.Close()
		}
	}()
	o.oursConn, o.oursErr = ours.Handshake(ctx, c1, security.Params{Role: ourRole, ExpectedPeer: oursExpect, Muxers: muxers})
	wg.Wait()
	return o
}

func pipePair(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }

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
		t.Fatal(a.err)
	}
	return c1, a.c
}
