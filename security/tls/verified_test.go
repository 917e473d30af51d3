package tls

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// TestVerifiedCache: a certificate that passed is answered from the cache
// with the same identity, still refused outside its validity; one that
// failed is not remembered; the least recently used entry goes first.
func TestVerifiedCache(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	certFor := func(seed int) ([][]byte, peer.PrivKey) {
		id := sectest.Key(t, peer.Ed25519, seed)
		enc, err := peer.MarshalPublicKey(id.Public())
		if err != nil {
			t.Fatal(err)
		}
		c, err := newCertificate(id, enc, now)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate, id
	}
	c := newVerifiedCache(2)
	a, aid := certFor(0)
	for i := range 2 {
		key, id, err := c.verify(a, now)
		if err != nil || !key.Equal(aid.Public()) {
			t.Fatalf("verify %d: %v", i, err)
		}
		if want, _ := peer.IDFromPublicKey(aid.Public()); id != want {
			t.Fatalf("verify %d: peer %s, want %s", i, id, want)
		}
	}
	if c.len() != 1 {
		t.Fatalf("cache holds %d certificates after one verified twice, want 1", c.len())
	}
	// A hit re-checks the time.
	if _, _, err := c.verify(a, now.Add(-2*notBeforeSkew)); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("cached certificate before NotBefore: err %v, want ErrBadCertificate", err)
	}
	if _, _, err := c.verify(a, now.Add(certValidity+time.Second)); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("cached certificate after NotAfter: err %v, want ErrBadCertificate", err)
	}
	// A refused certificate is not stored: one byte of the signature off.
	bad := [][]byte{append([]byte(nil), a[0]...)}
	bad[0][len(bad[0])-1] ^= 1
	for range 2 {
		if _, _, err := c.verify(bad, now); err == nil {
			t.Fatal("a certificate with a broken signature passed")
		}
	}
	if c.len() != 1 {
		t.Errorf("cache holds %d certificates after a refused one, want 1", c.len())
	}
	// Least recently used goes: a is used after b, so c evicts b.
	b, _ := certFor(1)
	d, _ := certFor(2)
	mustVerify := func(cert [][]byte) {
		t.Helper()
		if _, _, err := c.verify(cert, now); err != nil {
			t.Fatal(err)
		}
	}
	mustVerify(b)
	mustVerify(a)
	mustVerify(d)
	if c.len() != 2 {
		t.Fatalf("cache holds %d, want its bound 2", c.len())
	}
	_, hasB := c.c.get(sumOf(b))
	_, hasA := c.c.get(sumOf(a))
	if hasB || !hasA {
		t.Errorf("after b, a, d into a cache of 2: has a %v, has b %v; want a kept, b evicted", hasA, hasB)
	}
}

// TestVerifiedCacheHandshakes: a peer reconnecting with the certificate it
// reuses is verified once; the expected peer ID is still checked on a hit.
func TestVerifiedCacheHandshakes(t *testing.T) {
	server := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	client := newTransport(t, sectest.Key(t, peer.Ed25519, 1), Config{})
	for i := range 3 {
		handshakePair(t, client, server, server.LocalPeer())
		if n := server.verified.len(); n != 1 {
			t.Fatalf("handshake %d: the server's cache holds %d certificates, want 1", i, n)
		}
	}
	other := sectest.Key(t, peer.Ed25519, 2)
	otherID, _ := peer.IDFromPublicKey(other.Public())
	_, err := handshakeErr(t, client, server, otherID)
	var mm *security.PeerIDMismatchError
	if !errors.As(err, &mm) {
		t.Errorf("client expecting another peer, with the server's certificate cached: err %v, want a PeerIDMismatchError", err)
	}
	off := newTransport(t, sectest.Key(t, peer.Ed25519, 3), Config{VerifiedCacheSize: -1})
	if off.verified != nil {
		t.Errorf("VerifiedCacheSize < 0 kept a cache")
	}
}

// handshakeErr runs one handshake over TCP on loopback, the client
// expecting peer want, and returns the client's error (the server's
// connection, if any, is closed).
func handshakeErr(t *testing.T, client, server *Transport, want peer.ID) (security.Conn, error) {
	t.Helper()
	c1, c2 := sectest.TCPPair(t)
	ri, rr := sectest.Pair(t.Context(), client, server, c1, c2, security.Params{ExpectedPeer: want}, security.Params{})
	sectest.CloseAll(rr)
	if ri.Err != nil {
		c1.Close()
		c2.Close()
		return nil, ri.Err
	}
	sectest.CloseAll(ri)
	return ri.Conn, nil
}

// handshakePair runs one handshake that must succeed.
func handshakePair(t *testing.T, client, server *Transport, want peer.ID) {
	t.Helper()
	if _, err := handshakeErr(t, client, server, want); err != nil {
		t.Fatalf("handshake: %v", err)
	}
}

func sumOf(cert [][]byte) [32]byte { return sha256.Sum256(cert[0]) }
