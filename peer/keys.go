package peer

import (
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
)

// GenerateKey generates a private key of type t with default parameters:
// Ed25519, secp256k1, ECDSA on P-256, RSA of 2048 bits. Use
// GenerateRSAKey or GenerateECDSAKey for other sizes or curves.
//
// random is the entropy source; nil means crypto/rand.Reader. Ed25519 and
// secp256k1 keys are derived from random alone (a fixed reader gives a fixed
// key, which tests use). For RSA and ECDSA the Go standard library, since Go
// 1.26, always uses a secure source and ignores random.
func GenerateKey(t KeyType, random io.Reader) (PrivKey, error) {
	switch t {
	case Ed25519:
		return generateEd25519(orDefault(random))
	case Secp256k1:
		return generateSecp256k1(orDefault(random))
	case ECDSA:
		return GenerateECDSAKey(elliptic.P256(), random)
	case RSA:
		return GenerateRSAKey(2048, random)
	}
	return nil, fmt.Errorf("generating key: %w: %v", ErrUnknownKeyType, t)
}

func orDefault(random io.Reader) io.Reader {
	if random == nil {
		return rand.Reader
	}
	return random
}

// MarshalPublicKey encodes k as the peer-ids spec's PublicKey protobuf
// message. The encoding is deterministic: it is the input of peer-ID
// derivation (see IDFromPublicKey).
func MarshalPublicKey(k PubKey) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("marshalling public key: %w: nil key", ErrMalformedKey)
	}
	data, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("marshalling %v public key: %w", k.Type(), err)
	}
	return encodeKeyMessage(k.Type(), data), nil
}

// UnmarshalPublicKey decodes a PublicKey protobuf message. It accepts only
// the canonical encoding MarshalPublicKey produces, so that a key has one
// encoding and one peer ID: MarshalPublicKey(UnmarshalPublicKey(b)) == b.
// Errors wrap ErrMalformedKey, ErrUnknownKeyType or ErrRSAKeySize
// (*RSAKeySizeError).
func UnmarshalPublicKey(b []byte) (PubKey, error) {
	t, data, err := decodeKeyMessage(b)
	if err != nil {
		return nil, fmt.Errorf("unmarshalling public key: %w", err)
	}
	var k PubKey
	switch t {
	case Ed25519:
		k, err = unmarshalEd25519Public(data)
	case Secp256k1:
		k, err = unmarshalSecp256k1Public(data)
	case ECDSA:
		k, err = unmarshalECDSAPublic(data)
	case RSA:
		k, err = unmarshalRSAPublic(data)
	}
	if err != nil {
		return nil, fmt.Errorf("unmarshalling %v public key: %w", t, err)
	}
	return k, nil
}

// MarshalPrivateKey encodes k as the peer-ids spec's PrivateKey protobuf
// message, the format of key files (see WriteKeyFile).
func MarshalPrivateKey(k PrivKey) ([]byte, error) {
	if k == nil {
		return nil, fmt.Errorf("marshalling private key: %w: nil key", ErrMalformedKey)
	}
	data, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("marshalling %v private key: %w", k.Type(), err)
	}
	return encodeKeyMessage(k.Type(), data), nil
}

// UnmarshalPrivateKey decodes a PrivateKey protobuf message, accepting only
// the canonical encoding, with one exception the spec asks for: the legacy
// 96-byte Ed25519 form (private key, public key, public key again) is
// accepted when both public key copies match, and re-encodes to the 64-byte
// form. Errors wrap ErrMalformedKey, ErrUnknownKeyType or ErrRSAKeySize.
func UnmarshalPrivateKey(b []byte) (PrivKey, error) {
	t, data, err := decodeKeyMessage(b)
	if err != nil {
		return nil, fmt.Errorf("unmarshalling private key: %w", err)
	}
	var k PrivKey
	switch t {
	case Ed25519:
		k, err = unmarshalEd25519Private(data)
	case Secp256k1:
		k, err = unmarshalSecp256k1Private(data)
	case ECDSA:
		k, err = unmarshalECDSAPrivate(data)
	case RSA:
		k, err = unmarshalRSAPrivate(data)
	}
	if err != nil {
		return nil, fmt.Errorf("unmarshalling %v private key: %w", t, err)
	}
	return k, nil
}
