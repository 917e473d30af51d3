package peer

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Secp256k1 Data formats (peer-ids spec: "standard Bitcoin EC encoding"):
//
//	public:  the 33-byte compressed point (0x02/0x03 || X)
//	private: the 32-byte big-endian scalar, in [1, N-1]
//
// Only the compressed public form is accepted: it is what every
// implementation emits, and accepting the 65-byte form too would give one
// key two encodings and two peer IDs.
//
// Signature: ECDSA over SHA-256(message), DER-encoded (BIP 62); signing is
// deterministic (RFC 6979) and produces low-S signatures.

const (
	secp256k1PubSize  = secp256k1.PubKeyBytesLenCompressed
	secp256k1PrivSize = secp256k1.PrivKeyBytesLen
)

type secp256k1PubKey struct{ k *secp256k1.PublicKey }

type secp256k1PrivKey struct{ k *secp256k1.PrivateKey }

func generateSecp256k1(random io.Reader) (PrivKey, error) {
	k, err := secp256k1.GeneratePrivateKeyFromRand(random)
	if err != nil {
		return nil, fmt.Errorf("generating secp256k1 key: %w", err)
	}
	return &secp256k1PrivKey{k: k}, nil
}

func unmarshalSecp256k1Public(data []byte) (PubKey, error) {
	if len(data) != secp256k1PubSize {
		return nil, fmt.Errorf("%w: secp256k1 public key is %d bytes, want %d (compressed)", ErrMalformedKey, len(data), secp256k1PubSize)
	}
	k, err := secp256k1.ParsePubKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w: secp256k1 public key: %w", ErrMalformedKey, err)
	}
	return &secp256k1PubKey{k: k}, nil
}

func unmarshalSecp256k1Private(data []byte) (PrivKey, error) {
	if len(data) != secp256k1PrivSize {
		return nil, fmt.Errorf("%w: secp256k1 private key is %d bytes, want %d", ErrMalformedKey, len(data), secp256k1PrivSize)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(data); overflow || s.IsZero() {
		return nil, fmt.Errorf("%w: secp256k1 private key is not in [1, N-1]", ErrMalformedKey)
	}
	return &secp256k1PrivKey{k: secp256k1.NewPrivateKey(&s)}, nil
}

func (p *secp256k1PubKey) Type() KeyType        { return Secp256k1 }
func (p *secp256k1PubKey) Raw() ([]byte, error) { return p.k.SerializeCompressed(), nil }

func (p *secp256k1PubKey) Verify(data, sig []byte) (bool, error) {
	s, err := secpecdsa.ParseDERSignature(sig)
	if err != nil {
		return false, nil
	}
	h := sha256.Sum256(data)
	return s.Verify(h[:], p.k), nil
}

func (p *secp256k1PubKey) Equal(o PubKey) bool {
	q, ok := o.(*secp256k1PubKey)
	return ok && p.k.IsEqual(q.k)
}

func (p *secp256k1PrivKey) Type() KeyType        { return Secp256k1 }
func (p *secp256k1PrivKey) Raw() ([]byte, error) { return p.k.Serialize(), nil }

func (p *secp256k1PrivKey) Sign(data []byte) ([]byte, error) {
	h := sha256.Sum256(data)
	return secpecdsa.Sign(p.k, h[:]).Serialize(), nil
}

func (p *secp256k1PrivKey) Public() PubKey { return &secp256k1PubKey{k: p.k.PubKey()} }

func (p *secp256k1PrivKey) Equal(o PrivKey) bool {
	q, ok := o.(*secp256k1PrivKey)
	return ok && subtle.ConstantTimeCompare(p.k.Serialize(), q.k.Serialize()) == 1
}
