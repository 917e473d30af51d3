package noise

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// runAgainstEvil runs our side with role against an evil peer driven by
// script, over net.Pipe, and returns our error. Our raw conn must be
// closed afterwards.
func runAgainstEvil(t *testing.T, role network.Role, p security.Params, script func(e *evilPeer)) error {
	t.Helper()
	ours, theirs := net.Pipe()
	defer theirs.Close()
	tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	e := newEvilPeer(t, theirs, role == network.RoleResponder)
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(e)
		// Drain until our side hangs up, so that no write of ours blocks.
		io.Copy(io.Discard, theirs)
	}()
	p.Role = role
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := tr.Handshake(ctx, ours, p)
	if err == nil {
		c.Close()
		<-done
		t.Fatalf("handshake succeeded, want an error")
	}
	t.Logf("error: %v", err)
	var he *security.HandshakeError
	if !errors.As(err, &he) || he.Protocol != ID || he.Step == "" {
		t.Errorf("error %v (%T): want a *security.HandshakeError naming protocol and step", err, err)
	}
	sectest.AssertClosed(t, "our raw conn", ours)
	<-done
	return err
}

// asResponder scripts an evil responder sending payload pl in message 2.
func asResponder(pl func(e *evilPeer) []byte) func(e *evilPeer) {
	return func(e *evilPeer) {
		if _, err := e.read(); err != nil {
			return
		}
		e.write(pl(e))
	}
}

// asInitiator scripts an evil initiator sending payload pl in message 3.
func asInitiator(pl func(e *evilPeer) []byte) func(e *evilPeer) {
	return func(e *evilPeer) {
		if e.write(nil) != nil {
			return
		}
		if _, err := e.read(); err != nil {
			return
		}
		e.write(pl(e))
	}
}

// bothRoles runs the payload-level case against our initiator and our
// responder.
func bothRoles(t *testing.T, p security.Params, pl func(e *evilPeer) []byte, check func(t *testing.T, err error)) {
	t.Run("our initiator", func(t *testing.T) {
		check(t, runAgainstEvil(t, network.RoleInitiator, p, asResponder(pl)))
	})
	t.Run("our responder", func(t *testing.T) {
		check(t, runAgainstEvil(t, network.RoleResponder, p, asInitiator(pl)))
	})
}

func wantIs(targets ...error) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		for _, target := range targets {
			if !errors.Is(err, target) {
				t.Errorf("error %v: want errors.Is(err, %v)", err, target)
			}
		}
	}
}

func TestBadIdentitySignature(t *testing.T) {
	id := sectest.Key(t, peer.Ed25519, 2)
	bothRoles(t, security.Params{}, func(e *evilPeer) []byte {
		pub, _ := peer.MarshalPublicKey(id.Public())
		// Signed by the right key, over another static key.
		sig, _ := id.Sign(append([]byte(staticKeyPrefix), make([]byte, 32)...))
		p := payload{identityKey: pub, identitySig: sig}
		return p.marshal(nil)
	}, wantIs(security.ErrInvalidSignature))
}

func TestSignatureByAnotherKey(t *testing.T) {
	claimed, signer := sectest.Key(t, peer.Ed25519, 2), sectest.Key(t, peer.Ed25519, 3)
	bothRoles(t, security.Params{}, func(e *evilPeer) []byte {
		pub, _ := peer.MarshalPublicKey(claimed.Public())
		sig, _ := signer.Sign(append([]byte(staticKeyPrefix), e.static.Public...))
		p := payload{identityKey: pub, identitySig: sig}
		return p.marshal(nil)
	}, wantIs(security.ErrInvalidSignature))
}

func TestPeerIDMismatch(t *testing.T) {
	actual, expected := sectest.Key(t, peer.Secp256k1, 2), sectest.Key(t, peer.Ed25519, 3)
	bothRoles(t, security.Params{ExpectedPeer: sectest.IDOf(t, expected)}, func(e *evilPeer) []byte {
		return e.signedPayload(actual, nil)
	}, func(t *testing.T, err error) {
		if !errors.Is(err, security.ErrPeerIDMismatch) {
			t.Fatalf("error %v: want ErrPeerIDMismatch", err)
		}
		var me *security.PeerIDMismatchError
		if !errors.As(err, &me) {
			t.Fatalf("error %v: want a *PeerIDMismatchError", err)
		}
		if me.Expected != sectest.IDOf(t, expected) || me.Got != sectest.IDOf(t, actual) {
			t.Errorf("mismatch = {Expected %s, Got %s}, want {%s, %s}", me.Expected, me.Got, sectest.IDOf(t, expected), sectest.IDOf(t, actual))
		}
	})
}

// rsaPublicKeyMessage crafts the PublicKey protobuf of an RSA key of the
// given modulus size without generating a key (16384 bits would take
// minutes): a random odd modulus is enough, the size check comes first.
func rsaPublicKeyMessage(t *testing.T, bits int) []byte {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.Or(n, big.NewInt(0xfffff1))
	der, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	// PublicKey{Type = RSA (0), Data = der}
	b := []byte{0x08, 0x00, 0x12}
	b = binary.AppendUvarint(b, uint64(len(der)))
	return append(b, der...)
}

func TestRSAKeySizeRefused(t *testing.T) {
	for _, bits := range []int{1024, 16384} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			key := rsaPublicKeyMessage(t, bits)
			bothRoles(t, security.Params{}, func(e *evilPeer) []byte {
				p := payload{identityKey: key, identitySig: make([]byte, bits/8)}
				return p.marshal(nil)
			}, func(t *testing.T, err error) {
				wantIs(security.ErrIdentityKey, peer.ErrRSAKeySize)(t, err)
				var se *peer.RSAKeySizeError
				if errors.As(err, &se) && se.Bits != bits {
					t.Errorf("RSAKeySizeError.Bits = %d, want %d", se.Bits, bits)
				}
			})
		})
	}
}

func TestMalformedPayload(t *testing.T) {
	for name, pl := range map[string][]byte{
		"truncated field":          {0x0a, 0x20, 0x01},
		"wrong wire type":          {0x08, 0x01},
		"group":                    {0x0b},
		"no identity key":          {},
		"identity key is garbage":  {0x0a, 0x03, 0x01, 0x02, 0x03, 0x12, 0x01, 0x00},
		"repeated identity_sig":    {0x12, 0x01, 0x00, 0x12, 0x01, 0x00},
		"muxer list too long":      tooManyMuxers(),
		"muxer name of 1025 bytes": (&payload{identityKey: []byte{1}, muxers: []string{string(make([]byte, 1025))}}).marshal(nil),
	} {
		t.Run(name, func(t *testing.T) {
			bothRoles(t, security.Params{}, func(*evilPeer) []byte { return pl }, func(t *testing.T, err error) {
				if !errors.Is(err, security.ErrProtocol) && !errors.Is(err, security.ErrIdentityKey) {
					t.Errorf("error %v: want ErrProtocol or ErrIdentityKey", err)
				}
			})
		})
	}
}

func tooManyMuxers() []byte {
	m := make([]string, security.MaxMuxers+1)
	for i := range m {
		m[i] = fmt.Sprintf("/m/%d", i)
	}
	return (&payload{identityKey: []byte{1}, muxers: m}).marshal(nil)
}

func TestMessage1WithPayload(t *testing.T) {
	err := runAgainstEvil(t, network.RoleResponder, security.Params{}, func(e *evilPeer) {
		// The initiator MUST NOT send a payload (or extensions) in
		// message 1, which is not yet encrypted.
		e.write(e.signedPayload(sectest.Key(t, peer.Ed25519, 2), []string{"/yamux/1.0.0"}))
	})
	wantIs(security.ErrProtocol)(t, err)
}

func TestTruncatedMessage(t *testing.T) {
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run(role.String(), func(t *testing.T) {
			err := runAgainstEvil(t, role, security.Params{}, func(e *evilPeer) {
				if role == network.RoleInitiator {
					e.read()
				}
				// A frame announcing 200 bytes, carrying 50, then EOF.
				e.conn.Write(append([]byte{0, 200}, make([]byte, 50)...))
				e.conn.Close()
			})
			wantIs(security.ErrProtocol, io.ErrUnexpectedEOF)(t, err)
		})
	}
}

func TestShortMessage2(t *testing.T) {
	err := runAgainstEvil(t, network.RoleInitiator, security.Params{}, func(e *evilPeer) {
		e.read()
		// Well framed, but too short for "e, ee, s, es".
		writeRawFrame(e.conn, make([]byte, 40))
	})
	wantIs(security.ErrProtocol)(t, err)
}

func TestCorruptedHandshakeCiphertext(t *testing.T) {
	err := runAgainstEvil(t, network.RoleInitiator, security.Params{}, func(e *evilPeer) {
		e.read()
		msg, _, _, _ := e.hs.WriteMessage(nil, e.signedPayload(sectest.Key(t, peer.Ed25519, 2), nil))
		msg[len(msg)-1] ^= 1
		writeRawFrame(e.conn, msg)
	})
	wantIs(security.ErrProtocol)(t, err)
}

// TestStalledPeer: the peer reads message 1 and then says nothing. The
// context's deadline ends the handshake at exactly that time, with an error
// naming the step that was waiting.
func TestStalledPeer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
		go func() {
			io.ReadFull(theirs, make([]byte, 2+32))
		}()
		const timeout = 7 * time.Second
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		start := time.Now()
		_, err := tr.Handshake(ctx, ours, security.Params{Role: network.RoleInitiator})
		if got := time.Since(start); got != timeout {
			t.Errorf("handshake returned after %v, want %v", got, timeout)
		}
		wantIs(security.ErrHandshakeTimeout, context.DeadlineExceeded)(t, err)
		var he *security.HandshakeError
		if !errors.As(err, &he) || he.Step != stepRead2 || !he.Timeout() {
			t.Errorf("error %v: want a timeout HandshakeError at step %q", err, stepRead2)
		}
		sectest.AssertClosed(t, "our raw conn", ours)
	})
}

// TestCancel: cancelling the context unblocks a responder waiting for
// message 1 and reports context.Canceled, not a timeout.
func TestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(3*time.Second, cancel)
		_, err := tr.Handshake(ctx, ours, security.Params{Role: network.RoleResponder})
		wantIs(context.Canceled)(t, err)
		if errors.Is(err, security.ErrHandshakeTimeout) {
			t.Errorf("error %v matches ErrHandshakeTimeout, want only context.Canceled", err)
		}
		var he *security.HandshakeError
		if !errors.As(err, &he) || he.Step != stepRead1 {
			t.Errorf("error %v: want a HandshakeError at step %q", err, stepRead1)
		}
		sectest.AssertClosed(t, "our raw conn", ours)
	})
}

// TestContextAfterHandshake: once the handshake returned, cancelling its
// context does not affect the connection.
func TestContextAfterHandshake(t *testing.T) {
	ki, kr := sectest.Key(t, peer.Ed25519, 0), sectest.Key(t, peer.Ed25519, 1)
	c1, c2 := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	ri, rr := sectest.Pair(ctx, newTransport(t, ki, Config{}), newTransport(t, kr, Config{}), c1, c2, security.Params{}, security.Params{})
	defer sectest.CloseAll(ri, rr)
	if ri.Err != nil || rr.Err != nil {
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	cancel()
	sectest.Exchange(t, ri.Conn, rr.Conn)
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
			wantIs(security.ErrInvalidParams)(t, err)
			sectest.AssertClosed(t, "raw conn", ours)
		})
	}
}

// TestStalledInitiator: the initiator sends message 1, reads message 2 and
// then says nothing; our responder's error names message 3.
func TestStalledInitiator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ours, theirs := net.Pipe()
		defer theirs.Close()
		tr := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
		e := newEvilPeer(t, theirs, true)
		go func() {
			if e.write(nil) == nil {
				e.read()
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := tr.Handshake(ctx, ours, security.Params{Role: network.RoleResponder})
		var he *security.HandshakeError
		if !errors.As(err, &he) || he.Step != stepRead3 || !errors.Is(err, security.ErrHandshakeTimeout) {
			t.Errorf("error %v: want a timeout at step %q", err, stepRead3)
		}
		sectest.AssertClosed(t, "our raw conn", ours)
	})
}
