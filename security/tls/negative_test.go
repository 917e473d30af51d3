package tls

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

func TestEvilPeerValidCertificate(t *testing.T) {
	// The harness itself: a valid certificate from a bare crypto/tls peer
	// is accepted, so the negative cases below fail for their own reason.
	ours, theirs := net.Pipe()
	id := sectest.Key(t, peer.Secp256k1, 2)
	cfg := &tlsConfigForEvil{cert: certSpec{identity: id}.make(t)}
	done := make(chan error, 1)
	go func() { done <- cfg.serve(theirs) }()
	c, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(context.Background(), ours,
		security.Params{Role: network.RoleInitiator, ExpectedPeer: sectest.IDOf(t, id)})
	if err != nil {
		t.Fatalf("handshake with a valid certificate: %v", err)
	}
	if c.RemotePeer() != sectest.IDOf(t, id) {
		t.Errorf("RemotePeer = %s, want %s", c.RemotePeer(), sectest.IDOf(t, id))
	}
	c.Close()
	// The server side checked that our client sent no SNI.
	if err := <-done; err != nil {
		t.Errorf("evil server: %v", err)
	}
}

func TestBadIdentitySignature(t *testing.T) {
	id := sectest.Key(t, peer.Ed25519, 2)
	bothRoles(t, security.Params{}, certSpec{identity: id, signSPKI: []byte("another key")}, security.ErrInvalidSignature)
}

func TestPeerIDMismatch(t *testing.T) {
	actual, expected := sectest.Key(t, peer.ECDSA, 2), sectest.Key(t, peer.Ed25519, 3)
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run(role.String(), func(t *testing.T) {
			err := runAgainstEvil(t, role, security.Params{ExpectedPeer: sectest.IDOf(t, expected)}, certSpec{identity: actual}.make(t))
			var me *security.PeerIDMismatchError
			if !errors.As(err, &me) || !errors.Is(err, security.ErrPeerIDMismatch) {
				t.Fatalf("error %v: want a *PeerIDMismatchError", err)
			}
			if me.Expected != sectest.IDOf(t, expected) || me.Got != sectest.IDOf(t, actual) {
				t.Errorf("mismatch {Expected %s, Got %s}, want {%s, %s}", me.Expected, me.Got, sectest.IDOf(t, expected), sectest.IDOf(t, actual))
			}
		})
	}
}

// rsaPublicKeyMessage crafts the PublicKey protobuf of an RSA key of the
// given size without generating one; the size is checked first.
func rsaPublicKeyMessage(t *testing.T, bits int) []byte {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Or(n, big.NewInt(0xfffff1))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	b := []byte{0x08, 0x00, 0x12}
	b = binary.AppendUvarint(b, uint64(len(der)))
	return append(b, der...)
}

func TestRSAKeySizeRefused(t *testing.T) {
	for _, bits := range []int{1024, 16384} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			value, _ := asn1.Marshal(signedKey{PublicKey: rsaPublicKeyMessage(t, bits), Signature: make([]byte, bits/8)})
			bothRoles(t, security.Params{}, certSpec{extValue: value}, security.ErrIdentityKey, peer.ErrRSAKeySize)
		})
	}
}

func TestCertificateRefused(t *testing.T) {
	id := sectest.Key(t, peer.Ed25519, 2)
	unknownCritical := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Critical: true, Value: []byte{0x05, 0x00}}
	unknownHarmless := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 2}, Value: []byte{0x05, 0x00}}
	for _, tc := range []struct {
		name string
		spec certSpec
		want []error
	}{
		{"no libp2p extension", certSpec{identity: id, noExt: true}, []error{ErrBadCertificate}},
		{"unknown critical extension", certSpec{identity: id, extra: []pkix.Extension{unknownCritical}}, []error{ErrBadCertificate}},
		{"expired", certSpec{identity: id, notBefore: time.Now().Add(-2 * time.Hour), notAfter: time.Now().Add(-time.Hour)}, []error{ErrBadCertificate}},
		{"not yet valid", certSpec{identity: id, notBefore: time.Now().Add(time.Hour), notAfter: time.Now().Add(2 * time.Hour)}, []error{ErrBadCertificate}},
		{"malformed extension", certSpec{identity: id, extValue: []byte{0x30, 0x03, 0x04, 0x01}}, []error{ErrMalformedExtension}},
		{"extension with trailing bytes", certSpec{identity: id, extValue: append(mustSignedKey(t), 0)}, []error{ErrMalformedExtension}},
		{"identity key garbage", certSpec{extValue: mustMarshal(signedKey{PublicKey: []byte{1, 2, 3}, Signature: []byte{4}})}, []error{security.ErrIdentityKey}},
	} {
		t.Run(tc.name, func(t *testing.T) { bothRoles(t, security.Params{}, tc.spec, tc.want...) })
	}
	t.Run("unknown non-critical extension is ignored", func(t *testing.T) {
		ours, theirs := net.Pipe()
		cfg := &tlsConfigForEvil{cert: certSpec{identity: id, extra: []pkix.Extension{unknownHarmless}, critical: true}.make(t)}
		done := make(chan error, 1)
		go func() { done <- cfg.serve(theirs) }()
		c, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(context.Background(), ours, security.Params{Role: network.RoleInitiator})
		if err != nil {
			t.Fatalf("handshake: %v (a critical libp2p extension and an unknown non-critical one are allowed)", err)
		}
		c.Close()
		<-done
	})
}

func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustSignedKey(t *testing.T) []byte {
	pub, _ := peer.MarshalPublicKey(sectest.Key(t, peer.Ed25519, 2).Public())
	return mustMarshal(signedKey{PublicKey: pub, Signature: []byte{1}})
}

func TestVerifyChainCount(t *testing.T) {
	c := certSpec{identity: sectest.Key(t, peer.Ed25519, 2)}.make(t).Certificate[0]
	for _, n := range []int{0, 2} {
		chain := make([][]byte, n)
		for i := range chain {
			chain[i] = c
		}
		if _, err := verifyChain(chain, time.Now()); !errors.Is(err, ErrBadCertificate) {
			t.Errorf("%d certificates: error %v, want ErrBadCertificate", n, err)
		}
	}
	if _, err := verifyChain([][]byte{c[:len(c)-1]}, time.Now()); !errors.Is(err, ErrBadCertificate) {
		t.Errorf("truncated certificate: error %v, want ErrBadCertificate", err)
	}
}

// TestGarbageHandshake: bytes that are not TLS fail the handshake.
func TestGarbageHandshake(t *testing.T) {
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run(role.String(), func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer theirs.Close()
			go io.Copy(io.Discard, theirs)
			go theirs.Write([]byte("/multistream/1.0.0\n this is not TLS at all"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(ctx, ours, security.Params{Role: role})
			if errors.Is(err, security.ErrHandshakeTimeout) {
				t.Fatalf("error %v: the garbage should fail the handshake, not the deadline", err)
			}
			var he *security.HandshakeError
			if !errors.As(err, &he) || he.Step != stepHandshake {
				t.Errorf("error %v: want a HandshakeError at step %q", err, stepHandshake)
			}
			sectest.AssertClosed(t, "our raw conn", ours)
		})
	}
}

// TestAlteredCiphertext: a flipped bit in a record after the handshake
// fails the read, and the connection is unusable.
func TestAlteredCiphertext(t *testing.T) {
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	c1, m1 := net.Pipe()
	m2, c2 := net.Pipe()
	armed := make(chan struct{})
	var wg sync.WaitGroup
	relay := func(dst, src net.Conn, corrupt bool) {
		defer wg.Done()
		buf := make([]byte, 70000)
		for {
			n, err := src.Read(buf)
			if n > 0 && corrupt {
				select {
				case <-armed:
					buf[n-1] ^= 0x80
				default:
				}
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					src.Close()
					return
				}
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	wg.Add(2)
	go relay(m2, m1, true)
	go relay(m1, m2, false)
	defer wg.Wait()
	ri, rr := sectest.Pair(context.Background(), newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), c1, c2, security.Params{}, security.Params{})
	defer sectest.CloseAll(ri, rr)
	if ri.Err != nil || rr.Err != nil {
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	close(armed)
	go ri.Conn.Write([]byte("hello"))
	if _, err := rr.Conn.Read(make([]byte, 10)); err == nil {
		t.Fatal("read of an altered record succeeded")
	} else {
		t.Logf("read error: %v", err)
	}
	if _, err := rr.Conn.Read(make([]byte, 10)); err == nil {
		t.Errorf("second read succeeded, want the error to persist")
	}
}

// TestStalledPeer: the server reads the ClientHello and says nothing; the
// context deadline ends the handshake at exactly that time.
func TestStalledPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		go io.Copy(io.Discard, theirs)
		const timeout = 7 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		_, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(ctx, ours, security.Params{Role: network.RoleInitiator})
		if got := time.Since(start); got != timeout {
			t.Errorf("handshake returned after %v, want %v", got, timeout)
		}
		for _, want := range []error{security.ErrHandshakeTimeout, context.DeadlineExceeded} {
			if !errors.Is(err, want) {
				t.Errorf("error %v: want errors.Is(err, %v)", err, want)
			}
		}
		var he *security.HandshakeError
		if !errors.As(err, &he) || he.Step != stepHandshake || !he.Timeout() {
			t.Errorf("error %v: want a timeout HandshakeError at step %q", err, stepHandshake)
		}
		sectest.AssertClosed(t, "our raw conn", ours)
	})
}

func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		_, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(ctx, ours, security.Params{Role: network.RoleResponder})
		if !errors.Is(err, context.Canceled) || errors.Is(err, security.ErrHandshakeTimeout) {
			t.Errorf("error %v: want context.Canceled and not ErrHandshakeTimeout", err)
		}
		sectest.AssertClosed(t, "our raw conn", ours)
	})
}

func TestInvalidParams(t *testing.T) {
	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	for name, p := range map[string]security.Params{
		"no role":          {},
		"empty muxer name": {Role: network.RoleInitiator, Muxers: []string{""}},
	} {
		t.Run(name, func(t *testing.T) {
			ours, theirs := net.Pipe()
			defer theirs.Close()
			_, err := tr.Handshake(context.Background(), ours, p)
			if !errors.Is(err, security.ErrInvalidParams) {
				t.Errorf("error %v, want ErrInvalidParams", err)
			}
			sectest.AssertClosed(t, "raw conn", ours)
		})
	}
}
