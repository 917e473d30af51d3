package peer

import "fmt"

// KeyType is the libp2p KeyType protobuf enum (peer-ids spec). The numeric
// values are wire constants.
type KeyType int32

const (
	RSA       KeyType = 0
	Ed25519   KeyType = 1
	Secp256k1 KeyType = 2
	ECDSA     KeyType = 3
)

func (t KeyType) String() string {
	switch t {
	case RSA:
		return "RSA"
	case Ed25519:
		return "Ed25519"
	case Secp256k1:
		return "Secp256k1"
	case ECDSA:
		return "ECDSA"
	}
	return fmt.Sprintf("KeyType(%d)", int32(t))
}

// PubKey is a public identity key.
type PubKey interface {
	// Type is the key's libp2p KeyType.
	Type() KeyType
	// Raw returns the key's Data bytes in the per-type format of the
	// peer-ids spec (the bytes inside the PublicKey protobuf).
	Raw() ([]byte, error)
	// Verify reports whether sig is a valid signature of data. A malformed
	// signature is (false, nil) or an error, never a panic.
	Verify(data, sig []byte) (bool, error)
	// Equal reports whether both are the same key.
	Equal(PubKey) bool
}

// PrivKey is a private identity key.
type PrivKey interface {
	// Type is the key's libp2p KeyType.
	Type() KeyType
	// Raw returns the key's Data bytes in the per-type format of the
	// peer-ids spec (the bytes inside the PrivateKey protobuf).
	Raw() ([]byte, error)
	// Sign signs data with the scheme the peer-ids spec gives for the type.
	Sign(data []byte) ([]byte, error)
	// Public returns the matching public key.
	Public() PubKey
	// Equal reports whether both are the same key.
	Equal(PrivKey) bool
}
