package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
)

// ECDSA Data formats (as go-libp2p and the spec's test vectors use them; the
// spec's prose swaps the two names):
//
//	public:  DER SubjectPublicKeyInfo (PKIX), named curve P-256, P-384 or P-521
//	private: DER ECPrivateKey (SEC 1, RFC 5915) with the named curve and
//	         the public key, as crypto/x509.MarshalECPrivateKey writes it
//
// Signature: ECDSA over SHA-256(message) whatever the curve, ASN.1 DER
// encoded.
//
// Input must be exactly what this package would output for the same key
// (checked by re-encoding), so that a key has one encoding and one peer ID.

type ecdsaPubKey struct{ k *ecdsa.PublicKey }

type ecdsaPrivKey struct{ k *ecdsa.PrivateKey }

// GenerateECDSAKey generates an ECDSA key on curve, which must be P-256,
// P-384 or P-521 (anything else wraps ErrUnknownKeyType). random is ignored
// by the standard library since Go 1.26 (see GenerateKey).
func GenerateECDSAKey(curve elliptic.Curve, random io.Reader) (PrivKey, error) {
	if err := checkCurve(curve); err != nil {
		return nil, fmt.Errorf("generating ECDSA key: %w", err)
	}
	k, err := ecdsa.GenerateKey(curve, orDefault(random))
	if err != nil {
		return nil, fmt.Errorf("generating ECDSA key: %w", err)
	}
	return &ecdsaPrivKey{k: k}, nil
}

func checkCurve(c elliptic.Curve) error {
	switch c {
	case elliptic.P256(), elliptic.P384(), elliptic.P521():
		return nil
	}
	name := "nil"
	if c != nil {
		name = c.Params().Name
	}
	return fmt.Errorf("%w: ECDSA curve %s (want P-256, P-384 or P-521)", ErrUnknownKeyType, name)
}

func unmarshalECDSAPublic(data []byte) (PubKey, error) {
	pk, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA public key: %w", ErrMalformedKey, err)
	}
	k, ok := pk.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: ECDSA public key holds a %T", ErrMalformedKey, pk)
	}
	if err := checkCurve(k.Curve); err != nil {
		return nil, err
	}
	p := &ecdsaPubKey{k: k}
	if err := checkCanonical(p.Raw, data); err != nil {
		return nil, fmt.Errorf("ECDSA public key: %w", err)
	}
	return p, nil
}

func unmarshalECDSAPrivate(data []byte) (PrivKey, error) {
	k, err := x509.ParseECPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: ECDSA private key: %w", ErrMalformedKey, err)
	}
	if err := checkCurve(k.Curve); err != nil {
		return nil, err
	}
	p := &ecdsaPrivKey{k: k}
	if err := checkCanonical(p.Raw, data); err != nil {
		return nil, fmt.Errorf("ECDSA private key: %w", err)
	}
	return p, nil
}

// checkCanonical reports whether re-encoding a parsed key gives back the
// input bytes.
func checkCanonical(raw func() ([]byte, error), in []byte) error {
	out, err := raw()
	if err != nil {
		return fmt.Errorf("%w: re-encoding: %w", ErrMalformedKey, err)
	}
	if !bytes.Equal(out, in) {
		return fmt.Errorf("%w: not in canonical DER form", ErrMalformedKey)
	}
	return nil
}

func (p *ecdsaPubKey) Type() KeyType        { return ECDSA }
func (p *ecdsaPubKey) Raw() ([]byte, error) { return x509.MarshalPKIXPublicKey(p.k) }

func (p *ecdsaPubKey) Verify(data, sig []byte) (bool, error) {
	h := sha256.Sum256(data)
	return ecdsa.VerifyASN1(p.k, h[:], sig), nil
}

func (p *ecdsaPubKey) Equal(o PubKey) bool {
	q, ok := o.(*ecdsaPubKey)
	return ok && p.k.Equal(q.k)
}

func (p *ecdsaPrivKey) Type() KeyType        { return ECDSA }
func (p *ecdsaPrivKey) Raw() ([]byte, error) { return x509.MarshalECPrivateKey(p.k) }

func (p *ecdsaPrivKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := ecdsa.SignASN1(rand.Reader, p.k, h[:])
	if err != nil {
		return nil, fmt.Errorf("ECDSA signing: %w", err)
	}
	return sig, nil
}

func (p *ecdsaPrivKey) Public() PubKey { return &ecdsaPubKey{k: &p.k.PublicKey} }

func (p *ecdsaPrivKey) Equal(o PrivKey) bool {
	q, ok := o.(*ecdsaPrivKey)
	return ok && p.k.Equal(q.k)
}
