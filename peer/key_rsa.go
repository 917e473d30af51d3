package peer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"
	"math/bits"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RSA Data formats (peer-ids spec):
//
//	public:  DER SubjectPublicKeyInfo (PKIX)
//	private: DER RSAPrivateKey (PKCS #1)
//
// Signature: RSASSA-PKCS1-v1_5 with SHA-256.
//
// Keys must have MinRSABits to MaxRSABits bits. The modulus size is read from
// the DER before the key is handed to crypto/x509 (whose private-key parsing
// validates and precomputes, which costs time growing fast with the size),
// so an oversized key is refused for the price of reading a length
// (CVE-2023-39533).

type rsaPubKey struct{ k *rsa.PublicKey }

type rsaPrivKey struct{ k *rsa.PrivateKey }

// GenerateRSAKey generates an RSA key of the given size, which must be within
// [MinRSABits, MaxRSABits] (else *RSAKeySizeError). random is ignored by the
// standard library since Go 1.26 (see GenerateKey).
func GenerateRSAKey(bits int, random io.Reader) (PrivKey, error) {
	if err := checkRSABits(bits); err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	k, err := rsa.GenerateKey(orDefault(random), bits)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	return &rsaPrivKey{k: k}, nil
}

func checkRSABits(n int) error {
	if n < MinRSABits || n > MaxRSABits {
		return &RSAKeySizeError{Bits: n}
	}
	return nil
}

// integerBits returns the bit length of a DER INTEGER's content octets,
// ignoring a leading zero octet (present when the high bit is set).
func integerBits(v cryptobyte.String) int {
	for len(v) > 0 && v[0] == 0 {
		v = v[1:]
	}
	if len(v) == 0 {
		return 0
	}
	return (len(v)-1)*8 + bits.Len8(v[0])
}

// rsaPublicModulusBits reads the modulus size of a PKIX RSA public key:
//
//	SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier,
//	                                    subjectPublicKey BIT STRING }
//	RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }
func rsaPublicModulusBits(der []byte) (int, error) {
	s := cryptobyte.String(der)
	var spki, alg cryptobyte.String
	var key asn1.BitString
	if !s.ReadASN1(&spki, cbasn1.SEQUENCE) ||
		!spki.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!spki.ReadASN1BitString(&key) {
		return 0, fmt.Errorf("%w: RSA public key is not a DER SubjectPublicKeyInfo", ErrMalformedKey)
	}
	ks := cryptobyte.String(key.Bytes)
	var pub, n cryptobyte.String
	if !ks.ReadASN1(&pub, cbasn1.SEQUENCE) || !pub.ReadASN1(&n, cbasn1.INTEGER) {
		return 0, fmt.Errorf("%w: RSA public key has no modulus", ErrMalformedKey)
	}
	return integerBits(n), nil
}

// rsaPrivateModulusBits reads the modulus size of a PKCS #1 private key:
//
//	RSAPrivateKey ::= SEQUENCE { version INTEGER, modulus INTEGER, ... }
func rsaPrivateModulusBits(der []byte) (int, error) {
	s := cryptobyte.String(der)
	var priv, version, n cryptobyte.String
	if !s.ReadASN1(&priv, cbasn1.SEQUENCE) ||
		!priv.ReadASN1(&version, cbasn1.INTEGER) ||
		!priv.ReadASN1(&n, cbasn1.INTEGER) {
		return 0, fmt.Errorf("%w: RSA private key is not a DER PKCS #1 RSAPrivateKey", ErrMalformedKey)
	}
	return integerBits(n), nil
}

func unmarshalRSAPublic(data []byte) (PubKey, error) {
	n, err := rsaPublicModulusBits(data)
	if err != nil {
		return nil, err
	}
	if err := checkRSABits(n); err != nil {
		return nil, err
	}
	pk, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA public key: %w", ErrMalformedKey, err)
	}
	k, ok := pk.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: RSA public key holds a %T", ErrMalformedKey, pk)
	}
	p := &rsaPubKey{k: k}
	if err := checkCanonical(p.Raw, data); err != nil {
		return nil, fmt.Errorf("RSA public key: %w", err)
	}
	return p, nil
}

func unmarshalRSAPrivate(data []byte) (PrivKey, error) {
	n, err := rsaPrivateModulusBits(data)
	if err != nil {
		return nil, err
	}
	if err := checkRSABits(n); err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS1PrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: RSA private key: %w", ErrMalformedKey, err)
	}
	p := &rsaPrivKey{k: k}
	if err := checkCanonical(p.Raw, data); err != nil {
		return nil, fmt.Errorf("RSA private key: %w", err)
	}
	return p, nil
}

func (p *rsaPubKey) Type() KeyType        { return RSA }
func (p *rsaPubKey) Raw() ([]byte, error) { return x509.MarshalPKIXPublicKey(p.k) }

func (p *rsaPubKey) Verify(data, sig []byte) (bool, error) {
	h := sha256.Sum256(data)
	return rsa.VerifyPKCS1v15(p.k, crypto.SHA256, h[:], sig) == nil, nil
}

func (p *rsaPubKey) Equal(o PubKey) bool {
	q, ok := o.(*rsaPubKey)
	return ok && p.k.Equal(q.k)
}

func (p *rsaPrivKey) Type() KeyType        { return RSA }
func (p *rsaPrivKey) Raw() ([]byte, error) { return x509.MarshalPKCS1PrivateKey(p.k), nil }

func (p *rsaPrivKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.k, crypto.SHA256, h[:])
	if err != nil {
		return nil, fmt.Errorf("RSA signing: %w", err)
	}
	return sig, nil
}

func (p *rsaPrivKey) Public() PubKey { return &rsaPubKey{k: &p.k.PublicKey} }

func (p *rsaPrivKey) Equal(o PrivKey) bool {
	q, ok := o.(*rsaPrivKey)
	return ok && p.k.Equal(q.k)
}
