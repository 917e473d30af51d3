package noise

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

func handshakeOnce(t *testing.T, ti, tr *Transport, pi, pr security.Params) (sectest.Result, sectest.Result) {
	t.Helper()
	c1, c2 := net.Pipe()
	ri, rr := sectest.Pair(context.Background(), ti, tr, c1, c2, pi, pr)
	t.Cleanup(func() { sectest.CloseAll(ri, rr) })
	return ri, rr
}

// TestVerifiedCacheReconnect: the first handshake between two peers fills
// both caches; a second one, with the same static keys, takes the check
// from the cache and authenticates the same peers.
func TestVerifiedCacheReconnect(t *testing.T) {
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
	for i := range 2 {
		ri, rr := handshakeOnce(t, ti, tr, security.Params{}, security.Params{ExpectedPeer: sectest.IDOf(t, ki)})
		if ri.Err != nil || rr.Err != nil {
			t.Fatalf("handshake %d: %v, %v", i, ri.Err, rr.Err)
		}
		if got, want := ri.Conn.RemotePeer(), sectest.IDOf(t, kr); got != want {
			t.Errorf("handshake %d: initiator sees %s, want %s", i, got, want)
		}
		if got, want := rr.Conn.RemotePeer(), sectest.IDOf(t, ki); got != want {
			t.Errorf("handshake %d: responder sees %s, want %s", i, got, want)
		}
		if !ri.Conn.RemotePublicKey().Equal(kr.Public()) || !rr.Conn.RemotePublicKey().Equal(ki.Public()) {
			t.Errorf("handshake %d: remote public keys differ from the peers' keys", i)
		}
		if ti.verified.len() != 1 || tr.verified.len() != 1 {
			t.Errorf("handshake %d: caches hold %d and %d entries, want 1 and 1", i, ti.verified.len(), tr.verified.len())
		}
	}
}

// TestVerifiedCacheHitIsUsed: an entry planted for the exact inputs is what
// the handshake authenticates with, which shows that a hit skips the
// parsing and the signature check (the planted peer ID is another one).
func TestVerifiedCacheHitIsUsed(t *testing.T) {
	ki, kr, other := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1), sectest.Key(t, peer.Ed25519, 2)
	ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
	s, err := ti.statics.get()
	if err != nil {
		t.Fatal(err)
	}
	tr.verified.put(newVerifiedKey(s.identityKey, s.identitySig, s.pub), verified{key: other.Public(), id: sectest.IDOf(t, other)})
	ri, rr := handshakeOnce(t, ti, tr, security.Params{}, security.Params{})
	if ri.Err != nil || rr.Err != nil {
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	if got, want := rr.Conn.RemotePeer(), sectest.IDOf(t, other); got != want {
		t.Errorf("responder sees %s, want the planted %s", got, want)
	}
}

// TestVerifiedCacheExpectedPeer: a cached identity that is not the expected
// peer fails with a *PeerIDMismatchError as an uncached one does.
func TestVerifiedCacheExpectedPeer(t *testing.T) {
	ki, kr, want := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1), sectest.Key(t, peer.Ed25519, 2)
	ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
	if ri, rr := handshakeOnce(t, ti, tr, security.Params{}, security.Params{}); ri.Err != nil || rr.Err != nil {
		t.Fatalf("first handshake: %v, %v", ri.Err, rr.Err)
	}
	ri, _ := handshakeOnce(t, ti, tr, security.Params{ExpectedPeer: sectest.IDOf(t, want)}, security.Params{})
	var me *security.PeerIDMismatchError
	if !errors.As(ri.Err, &me) || me.Got != sectest.IDOf(t, kr) || me.Expected != sectest.IDOf(t, want) {
		t.Fatalf("second handshake expecting another peer: %v, want a *PeerIDMismatchError{%s, %s}", ri.Err, sectest.IDOf(t, want), sectest.IDOf(t, kr))
	}
}

// evilHandshake runs ours as role against e, which sends pl as its payload,
// and returns our handshake's error.
func evilHandshake(t *testing.T, ours *Transport, role network.Role, ourConn net.Conn, e *evilPeer, pl []byte) error {
	t.Helper()
	script := asInitiator(func(*evilPeer) []byte { return pl })
	if role == network.RoleInitiator {
		script = asResponder(func(*evilPeer) []byte { return pl })
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(e)
		io.Copy(io.Discard, e.conn)
	}()
	c, err := ours.Handshake(context.Background(), ourConn, security.Params{Role: role})
	if err == nil {
		c.Close()
	}
	e.conn.Close()
	<-done
	return err
}

// TestVerifiedCacheNotForFailures: a failed signature check is not
// remembered, and a disabled cache remembers nothing.
func TestVerifiedCacheNotForFailures(t *testing.T) {
	ours := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	id := sectest.Key(t, peer.Ed25519, 2)
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		c1, c2 := net.Pipe()
		e := newEvilPeer(t, c2, role == network.RoleResponder)
		pub, _ := peer.MarshalPublicKey(id.Public())
		sig, _ := id.Sign(append([]byte(staticKeyPrefix), make([]byte, 32)...)) // over another static key
		err := evilHandshake(t, ours, role, c1, e, (&payload{identityKey: pub, identitySig: sig}).marshal(nil))
		if !errors.Is(err, security.ErrInvalidSignature) {
			t.Fatalf("as %v: error %v, want security.ErrInvalidSignature", role, err)
		}
		if n := ours.verified.len(); n != 0 {
			t.Fatalf("as %v: after a failed check the cache holds %d entries, want 0", role, n)
		}
	}
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	ti, tr := newTransport(t, ki, Config{VerifiedCacheSize: -1}), newTransport(t, kr, Config{VerifiedCacheSize: -1})
	for range 2 {
		if ri, rr := handshakeOnce(t, ti, tr, security.Params{}, security.Params{}); ri.Err != nil || rr.Err != nil {
			t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
		}
	}
	if n := ti.verified.len() + tr.verified.len(); n != 0 {
		t.Errorf("disabled caches hold %d entries, want 0", n)
	}
}

// TestVerifiedCacheNeedsStaticKey: replaying a cached peer's static public
// key and payload without its static private key fails: the handshake's DH
// binds the static key, so the payload does not even decrypt.
func TestVerifiedCacheNeedsStaticKey(t *testing.T) {
	kv, ko := sectest.Key(t, peer.Ed25519, 1), sectest.Key(t, peer.Ed25519, 0)
	victim, ours := newTransport(t, kv, Config{}), newTransport(t, ko, Config{})
	if ri, rr := handshakeOnce(t, victim, ours, security.Params{}, security.Params{}); ri.Err != nil || rr.Err != nil {
		t.Fatalf("victim's handshake: %v, %v", ri.Err, rr.Err)
	}
	if ours.verified.len() != 1 {
		t.Fatalf("cache holds %d entries, want the victim's 1", ours.verified.len())
	}
	vs, err := victim.statics.get()
	if err != nil {
		t.Fatal(err)
	}
	stolen := (&payload{identityKey: vs.identityKey, identitySig: vs.identitySig}).marshal(nil)
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		c1, c2 := net.Pipe()
		fake, err := noise.DH25519.GenerateKeypair(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		e := newEvilPeer(t, c2, role == network.RoleResponder)
		e.static = noise.DHKey{Private: fake.Private, Public: vs.pub}
		e.hs, err = noise.NewHandshakeState(noise.Config{
			CipherSuite:   noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashSHA256),
			Pattern:       noise.HandshakeXX,
			Initiator:     role == network.RoleResponder,
			StaticKeypair: e.static,
		})
		if err != nil {
			t.Fatal(err)
		}
		err = evilHandshake(t, ours, role, c1, e, stolen)
		if err == nil {
			t.Fatalf("as %v: handshake with a replayed static key and payload succeeded", role)
		}
		if !errors.Is(err, security.ErrProtocol) {
			t.Errorf("as %v: error %v, want security.ErrProtocol (the message does not decrypt)", role, err)
		}
	}
}

// TestVerifiedCacheBounded: the cache holds at most its size, keeps
// recently used entries and disables itself for sizes below 2.
func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache(8)
	key := func(i int) verifiedKey { return newVerifiedKey([]byte{byte(i)}, nil, nil) }
	for i := range 100 {
		c.put(key(i), verified{id: peer.ID(rune('a' + i%26))})
		if i%3 == 0 {
			if _, ok := c.get(key(0)); !ok {
				t.Fatalf("after %d puts, entry 0, used every third put, was dropped", i+1)
			}
		}
		if n := c.len(); n > 8 {
			t.Fatalf("after %d puts the cache holds %d entries, more than 8", i+1, n)
		}
	}
	if _, ok := c.get(key(50)); ok {
		t.Errorf("entry 50 of 100, never used again, is still held by a cache of 8")
	}
	for _, size := range []int{-1, 1} {
		d := newVerifiedCache(size)
		d.put(key(1), verified{})
		if _, ok := d.get(key(1)); ok || d.len() != 0 {
			t.Errorf("cache of size %d stores entries", size)
		}
	}
}

// TestEphemeralForgotten: once a handshake is over, its DH function (which
// the connection's cipher states keep through the cipher suite) holds no
// key, and its copy of the ephemeral private key is zeroed.
func TestEphemeralForgotten(t *testing.T) {
	ti := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 1), Config{})
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	hi := &handshake{ctx: context.Background(), t: ti, raw: c1, p: security.Params{Role: network.RoleInitiator}}
	hr := &handshake{ctx: context.Background(), t: tr, raw: c2, p: security.Params{Role: network.RoleResponder}}
	errc := make(chan error, 1)
	go func() { errc <- hr.run() }()
	if err := hi.run(); err != nil {
		t.Fatalf("initiator: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("responder: %v", err)
	}
	for _, h := range []*handshake{hi, hr} {
		if d := h.dh; d.eph != nil || d.ephRaw != nil || d.static != nil || d.staticRaw != nil {
			t.Errorf("%v: DH function still holds keys after the handshake", h.p.Role)
		}
	}

	d := &ecdhFunc{}
	kp, err := d.GenerateKeypair(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d.forget()
	if !bytes.Equal(kp.Private, make([]byte, 32)) {
		t.Errorf("ephemeral private key not zeroed by forget: %x", kp.Private)
	}
}
