package noise

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/flynn/noise"
)

// ecdhFunc is a noise.DHFunc for X25519 built on crypto/ecdh that keeps the
// parsed private keys of one handshake.
//
// flynn/noise's DH25519 goes through x/crypto's curve25519.X25519, which
// parses the private key anew on every call, and crypto/ecdh's
// NewPrivateKey derives the public key while parsing: every DH costs two
// scalar multiplications, and GenerateKeypair two as well. Here the key
// pair generated for the handshake (the ephemeral) and the node's static
// key are kept parsed, so each DH is one scalar multiplication and key
// generation one.
//
// An ecdhFunc serves a single handshake (one goroutine); it is not safe for
// concurrent use.
type ecdhFunc struct {
	static    *ecdh.PrivateKey
	staticRaw []byte
	eph       *ecdh.PrivateKey
	ephRaw    []byte
	// ephemerals, when set, supplies the ephemeral key pair instead of the
	// reader GenerateKeypair is given.
	ephemerals *ephemeralPool
}

var x25519 = ecdh.X25519()

func (d *ecdhFunc) GenerateKeypair(rng io.Reader) (noise.DHKey, error) {
	var k *ecdh.PrivateKey
	var err error
	if d.ephemerals != nil {
		k, err = d.ephemerals.take()
	} else if k, err = x25519.GenerateKey(rng); err != nil {
		err = fmt.Errorf("generating X25519 key: %w", err)
	}
	if err != nil {
		return noise.DHKey{}, err
	}
	d.eph, d.ephRaw = k, k.Bytes()
	return noise.DHKey{Private: d.ephRaw, Public: k.PublicKey().Bytes()}, nil
}

func (d *ecdhFunc) DH(priv, pub []byte) ([]byte, error) {
	var k *ecdh.PrivateKey
	switch {
	case d.eph != nil && subtle.ConstantTimeCompare(priv, d.ephRaw) == 1:
		k = d.eph
	case d.static != nil && subtle.ConstantTimeCompare(priv, d.staticRaw) == 1:
		k = d.static
	default:
		var err error
		if k, err = x25519.NewPrivateKey(priv); err != nil {
			return nil, err
		}
	}
	p, err := x25519.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	// ECDH refuses a low-order point (all-zero output), as RFC 7748 allows
	// and the Noise spec permits.
	return k.ECDH(p)
}

// forget drops the keys d holds and clears its copy of the ephemeral
// private key. A DH after it parses the given private key anew.
func (d *ecdhFunc) forget() {
	clear(d.ephRaw)
	d.static, d.staticRaw, d.eph, d.ephRaw, d.ephemerals = nil, nil, nil, nil, nil
}

func (d *ecdhFunc) DHLen() int     { return 32 }
func (d *ecdhFunc) DHName() string { return "25519" }
