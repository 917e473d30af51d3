package peer

import (
	"errors"
	"fmt"
	"io/fs"
)

// Sentinel errors. Every error returned by this package that stems from one
// of these conditions wraps the matching sentinel, so callers test with
// errors.Is, never by message text.
var (
	// ErrUnknownKeyType: a KeyType outside RSA, Ed25519, Secp256k1, ECDSA,
	// or an ECDSA curve other than P-256, P-384, P-521.
	ErrUnknownKeyType = errors.New("peer: unknown key type")
	// ErrMalformedKey: key bytes that do not follow the peer-ids spec
	// encoding (protobuf framing or the per-type Data format).
	ErrMalformedKey = errors.New("peer: malformed key")
	// ErrRSAKeySize is wrapped by every *RSAKeySizeError.
	ErrRSAKeySize = errors.New("peer: RSA key size not accepted")
	// ErrInvalidID: bytes or text that are not a valid peer ID.
	ErrInvalidID = errors.New("peer: invalid peer ID")
	// ErrNoPublicKey: the peer ID is a SHA2-256 multihash, which does not
	// embed the public key; the key must be obtained from the peer.
	ErrNoPublicKey = errors.New("peer: public key not embedded in peer ID")
	// ErrInsecureKeyFile is wrapped by every *InsecureKeyFileError.
	ErrInsecureKeyFile = errors.New("peer: key file is accessible by group or others")
)

// RSA key sizes accepted for parsing, generation, signing and verification.
// Larger keys make verification arbitrarily expensive (CVE-2023-39533);
// smaller ones are weak.
const (
	MinRSABits = 2048
	MaxRSABits = 8192
)

// RSAKeySizeError reports an RSA key whose modulus is outside
// [MinRSABits, MaxRSABits]. It is returned before any expensive work on the
// key. It wraps ErrRSAKeySize.
type RSAKeySizeError struct {
	Bits int // the modulus size in bits
}

func (e *RSAKeySizeError) Error() string {
	return fmt.Sprintf("peer: RSA key of %d bits refused: accepted sizes are %d to %d bits", e.Bits, MinRSABits, MaxRSABits)
}

func (e *RSAKeySizeError) Unwrap() error { return ErrRSAKeySize }

// InsecureKeyFileError reports a private key file that group or others may
// access. It wraps ErrInsecureKeyFile; its message says how to fix it.
type InsecureKeyFileError struct {
	Path string
	Mode fs.FileMode // the file's permission bits
}

func (e *InsecureKeyFileError) Error() string {
	return fmt.Sprintf("peer: key file %s has mode %04o and is accessible by group or others; "+
		"restrict it with: chmod 600 %s", e.Path, uint32(e.Mode.Perm()), e.Path)
}

func (e *InsecureKeyFileError) Unwrap() error { return ErrInsecureKeyFile }
