package peer

import (
	"bytes"
	"crypto/ed25519"
	"crypto/subtle"
	"fmt"
	"io"
)

// Ed25519 Data formats (peer-ids spec):
//
//	public:  the 32-byte public key
//	private: seed (32) || public key (32); the legacy form seed || pub || pub
//	         (96 bytes) is accepted on input when both copies agree
//
// Signatures are plain RFC 8032 Ed25519 over the message.

type ed25519PubKey struct{ k ed25519.PublicKey }

type ed25519PrivKey struct{ k ed25519.PrivateKey }

func generateEd25519(random io.Reader) (PrivKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(random, seed); err != nil {
		return nil, fmt.Errorf("generating Ed25519 key: reading seed: %w", err)
	}
	return &ed25519PrivKey{k: ed25519.NewKeyFromSeed(seed)}, nil
}

func unmarshalEd25519Public(data []byte) (PubKey, error) {
	if len(data) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: Ed25519 public key is %d bytes, want %d", ErrMalformedKey, len(data), ed25519.PublicKeySize)
	}
	return &ed25519PubKey{k: bytes.Clone(data)}, nil
}

func unmarshalEd25519Private(data []byte) (PrivKey, error) {
	switch len(data) {
	case ed25519.PrivateKeySize:
	case ed25519.PrivateKeySize + ed25519.PublicKeySize:
		pub1 := data[ed25519.SeedSize:ed25519.PrivateKeySize]
		pub2 := data[ed25519.PrivateKeySize:]
		if !bytes.Equal(pub1, pub2) {
			return nil, fmt.Errorf("%w: legacy 96-byte Ed25519 private key has two different public keys", ErrMalformedKey)
		}
		data = data[:ed25519.PrivateKeySize]
	default:
		return nil, fmt.Errorf("%w: Ed25519 private key is %d bytes, want %d", ErrMalformedKey, len(data), ed25519.PrivateKeySize)
	}
	// The stored public half must be the one the seed derives, otherwise
	// signatures would verify under a key nobody holds.
	k := ed25519.NewKeyFromSeed(data[:ed25519.SeedSize])
	if subtle.ConstantTimeCompare(k, data) != 1 {
		return nil, fmt.Errorf("%w: Ed25519 private key's public half does not match its seed", ErrMalformedKey)
	}
	return &ed25519PrivKey{k: k}, nil
}

func (p *ed25519PubKey) Type() KeyType        { return Ed25519 }
func (p *ed25519PubKey) Raw() ([]byte, error) { return bytes.Clone(p.k), nil }

func (p *ed25519PubKey) Verify(data, sig []byte) (bool, error) {
	if len(sig) != ed25519.SignatureSize {
		return false, nil
	}
	return ed25519.Verify(p.k, data, sig), nil
}

func (p *ed25519PubKey) Equal(o PubKey) bool {
	q, ok := o.(*ed25519PubKey)
	return ok && bytes.Equal(p.k, q.k)
}

func (p *ed25519PrivKey) Type() KeyType        { return Ed25519 }
func (p *ed25519PrivKey) Raw() ([]byte, error) { return bytes.Clone(p.k), nil }

func (p *ed25519PrivKey) Sign(data []byte) ([]byte, error) {
	return ed25519.Sign(p.k, data), nil
}

func (p *ed25519PrivKey) Public() PubKey {
	return &ed25519PubKey{k: bytes.Clone(p.k[ed25519.SeedSize:])}
}

func (p *ed25519PrivKey) Equal(o PrivKey) bool {
	q, ok := o.(*ed25519PrivKey)
	return ok && subtle.ConstantTimeCompare(p.k, q.k) == 1
}
