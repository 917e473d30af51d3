package peer

import (
	"fmt"
	"strings"

	"github.com/mr-tron/base58"
	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"
)

// ID is a libp2p peer ID: the binary multihash of the peer's encoded public
// key (identity multihash when the encoding is at most 42 bytes, SHA2-256
// otherwise), held as a string so that it is comparable and usable as a map
// key. Comparing two IDs with < compares their multihash bytes, which is the
// bytewise order Concord's tie-breaks use.
type ID string

// Peer-ID constants of the peer-ids spec and the multicodec table.
const (
	// maxInlineKeyLen: public keys whose PublicKey message is at most this
	// long are embedded in the ID with the identity multihash.
	maxInlineKeyLen = 42
	// cidVersion1 and codecLibp2pKey make up the CIDv1 text form:
	// <multibase prefix><varint 1><varint 0x72><multihash>.
	cidVersion1    = 1
	codecLibp2pKey = 0x72
)

// IDFromPublicKey derives the peer ID of k: the identity multihash of
// MarshalPublicKey(k) when that is at most 42 bytes long (Ed25519,
// secp256k1), its SHA2-256 multihash otherwise (ECDSA, RSA).
func IDFromPublicKey(k PubKey) (ID, error) {
	b, err := MarshalPublicKey(k)
	if err != nil {
		return "", fmt.Errorf("deriving peer ID: %w", err)
	}
	code := uint64(multihash.SHA2_256)
	if len(b) <= maxInlineKeyLen {
		code = multihash.IDENTITY
	}
	mh, err := multihash.Sum(b, code, -1)
	if err != nil {
		return "", fmt.Errorf("deriving peer ID: %w", err)
	}
	return ID(mh), nil
}

// IDFromPrivateKey derives the peer ID of k's public key.
func IDFromPrivateKey(k PrivKey) (ID, error) {
	if k == nil {
		return "", fmt.Errorf("deriving peer ID: %w: nil key", ErrMalformedKey)
	}
	return IDFromPublicKey(k.Public())
}

// IDFromBytes checks that b is a valid binary peer ID and returns it. Valid
// means: a well-formed multihash that is either SHA2-256 (32-byte digest) or
// identity whose digest is a canonical PublicKey message of at most 42 bytes
// (so that IDFromPublicKey of that key gives b back). Errors wrap
// ErrInvalidID.
func IDFromBytes(b []byte) (ID, error) {
	dm, err := multihash.Decode(b)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	switch dm.Code {
	case multihash.SHA2_256:
		if dm.Length != 32 {
			return "", fmt.Errorf("%w: SHA2-256 digest of %d bytes", ErrInvalidID, dm.Length)
		}
	case multihash.IDENTITY:
		if dm.Length > maxInlineKeyLen {
			return "", fmt.Errorf("%w: identity multihash of %d bytes, longer keys must be hashed with SHA2-256", ErrInvalidID, dm.Length)
		}
		if _, err := UnmarshalPublicKey(dm.Digest); err != nil {
			return "", fmt.Errorf("%w: identity multihash does not hold a public key: %w", ErrInvalidID, err)
		}
	default:
		return "", fmt.Errorf("%w: multihash %s (0x%x), want identity or sha2-256", ErrInvalidID, dm.Name, dm.Code)
	}
	return ID(b), nil
}

// Decode parses the text form of a peer ID: either a bare base58btc
// multihash (starting with "Qm" or "1", the form String returns) or a CIDv1
// with the libp2p-key codec in any multibase (the form CID returns, in
// base32, or e.g. base36 "k51…"). Errors wrap ErrInvalidID.
func Decode(s string) (ID, error) {
	if strings.HasPrefix(s, "Qm") || strings.HasPrefix(s, "1") {
		b, err := base58.Decode(s)
		if err != nil {
			return "", fmt.Errorf("%w: base58btc: %w", ErrInvalidID, err)
		}
		return IDFromBytes(b)
	}
	_, b, err := multibase.Decode(s)
	if err != nil {
		return "", fmt.Errorf("%w: neither base58btc nor multibase: %w", ErrInvalidID, err)
	}
	version, n, err := varint.FromUvarint(b)
	if err != nil {
		return "", fmt.Errorf("%w: CID version: %w", ErrInvalidID, err)
	}
	if version != cidVersion1 {
		return "", fmt.Errorf("%w: CID version %d, want 1", ErrInvalidID, version)
	}
	b = b[n:]
	codec, n, err := varint.FromUvarint(b)
	if err != nil {
		return "", fmt.Errorf("%w: CID codec: %w", ErrInvalidID, err)
	}
	if codec != codecLibp2pKey {
		return "", fmt.Errorf("%w: CID codec 0x%x, want libp2p-key (0x72)", ErrInvalidID, codec)
	}
	return IDFromBytes(b[n:])
}

// String returns the base58btc encoding of the multihash ("12D3KooW…" for
// Ed25519, "Qm…" for SHA2-256 IDs), the canonical text form.
func (id ID) String() string { return base58.Encode([]byte(id)) }

// CID returns the CIDv1 text form in base32 ("bafz…"), the spec's default
// multibase for that form.
func (id ID) CID() string {
	b := make([]byte, 0, 2+len(id))
	b = append(b, varint.ToUvarint(cidVersion1)...)
	b = append(b, varint.ToUvarint(codecLibp2pKey)...)
	b = append(b, id...)
	return multibase.MustNewEncoder(multibase.Base32).Encode(b)
}

// ShortString returns an abbreviated form for logs: the first two and the
// last six characters of String, e.g. "12*Wjhx5N".
func (id ID) ShortString() string {
	s := id.String()
	if len(s) <= 10 {
		return s
	}
	return s[:2] + "*" + s[len(s)-6:]
}

// Validate checks that id is a valid peer ID (see IDFromBytes).
func (id ID) Validate() error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidID)
	}
	_, err := IDFromBytes([]byte(id))
	return err
}

// ExtractPublicKey returns the public key embedded in an identity-multihash
// ID. SHA2-256 IDs do not embed it: the error wraps ErrNoPublicKey.
func (id ID) ExtractPublicKey() (PubKey, error) {
	if err := id.Validate(); err != nil {
		return nil, fmt.Errorf("extracting public key: %w", err)
	}
	dm, err := multihash.Decode([]byte(id))
	if err != nil { // unreachable after Validate
		return nil, fmt.Errorf("extracting public key: %w: %w", ErrInvalidID, err)
	}
	if dm.Code != multihash.IDENTITY {
		return nil, fmt.Errorf("extracting public key from %s: %w", id.ShortString(), ErrNoPublicKey)
	}
	return UnmarshalPublicKey(dm.Digest)
}

// MatchesPublicKey reports whether id is the peer ID of k.
func (id ID) MatchesPublicKey(k PubKey) bool {
	if k == nil {
		return false
	}
	other, err := IDFromPublicKey(k)
	return err == nil && other == id
}

// MatchesPrivateKey reports whether id is the peer ID of k's public key.
func (id ID) MatchesPrivateKey(k PrivKey) bool {
	return k != nil && id.MatchesPublicKey(k.Public())
}

// MarshalText encodes id as String does, for JSON and text configuration.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes any form Decode accepts.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := Decode(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
