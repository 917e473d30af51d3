package tls

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
)

// Spec constants (tls/tls.md, "libp2p Public Key Extension").
var (
	// extensionOID is the libp2p Public Key Extension, allocated by IANA to
	// the libp2p project.
	extensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}
)

const (
	// certificatePrefix is prepended to the certificate's
	// SubjectPublicKeyInfo before the identity key signs it.
	certificatePrefix = "libp2p-tls-handshake:"
	// alpnLibp2p is the ALPN protocol of libp2p TLS, always last in the
	// client's list; chosen, it means "no muxer agreed in the handshake".
	alpnLibp2p = "libp2p"
)

// signedKey is the extension's value:
//
//	SignedKey ::= SEQUENCE {
//	  publicKey OCTET STRING,  -- PublicKey protobuf of the identity key
//	  signature OCTET STRING   -- over "libp2p-tls-handshake:" || SPKI
//	}
//
// The spec's ASN.1 says BIT STRING, but every implementation, and the
// spec's own test vectors, encode OCTET STRINGs; so does Concord, and it
// accepts nothing else.
type signedKey struct {
	PublicKey []byte
	Signature []byte
}

// ErrMalformedExtension: the libp2p extension's value is not a DER
// SignedKey.
var ErrMalformedExtension = errors.New("security/tls: malformed libp2p public key extension")

func marshalSignedKey(publicKey, signature []byte) ([]byte, error) {
	return asn1.Marshal(signedKey{PublicKey: publicKey, Signature: signature})
}

// unmarshalSignedKey decodes an extension value strictly: it must be the
// DER encoding of a SignedKey and nothing else. encoding/asn1 alone would
// accept trailing elements inside the SEQUENCE (FuzzExtension found it), so
// the value is re-encoded and compared.
func unmarshalSignedKey(b []byte) (signedKey, error) {
	var sk signedKey
	rest, err := asn1.Unmarshal(b, &sk)
	if err != nil {
		return signedKey{}, fmt.Errorf("%w: %w", ErrMalformedExtension, err)
	}
	if len(rest) != 0 {
		return signedKey{}, fmt.Errorf("%w: %d trailing bytes", ErrMalformedExtension, len(rest))
	}
	if again, err := asn1.Marshal(sk); err != nil || !bytes.Equal(again, b) {
		return signedKey{}, fmt.Errorf("%w: not the DER encoding of a SignedKey", ErrMalformedExtension)
	}
	return sk, nil
}
