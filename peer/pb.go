package peer

import (
	"fmt"

	"github.com/multiformats/go-varint"
)

// The PublicKey and PrivateKey messages of the peer-ids spec share one shape:
//
//	message PublicKey  { required KeyType Type = 1; required bytes Data = 2; }
//	message PrivateKey { required KeyType Type = 1; required bytes Data = 2; }
//
// On the wire (protobuf encoding) that is, with minimal varints:
//
//	0x08 <varint Type> 0x12 <varint len(Data)> <Data>
//
// The spec requires encoders to be deterministic (fields minimally encoded,
// in tag order, all present, no others). This package accepts exactly that
// canonical form and nothing else, so that decoding then encoding gives back
// the input bytes and a key has exactly one encoding (hence one peer ID).
const (
	pbTagType = 1<<3 | 0 // field 1, wire type 0 (varint)
	pbTagData = 2<<3 | 2 // field 2, wire type 2 (length-delimited)
)

// maxKeyMessage bounds the size of an encoded key message. The largest valid
// one is an 8192-bit RSA private key in PKCS#1 (about 4.7 KB).
const maxKeyMessage = 16 << 10

// encodeKeyMessage encodes the PublicKey/PrivateKey protobuf message.
func encodeKeyMessage(t KeyType, data []byte) []byte {
	out := make([]byte, 0, 2+varint.UvarintSize(uint64(t))+varint.UvarintSize(uint64(len(data)))+len(data))
	out = append(out, pbTagType)
	out = append(out, varint.ToUvarint(uint64(t))...)
	out = append(out, pbTagData)
	out = append(out, varint.ToUvarint(uint64(len(data)))...)
	return append(out, data...)
}

// decodeKeyMessage strictly parses the canonical PublicKey/PrivateKey
// message. The returned data aliases b.
func decodeKeyMessage(b []byte) (KeyType, []byte, error) {
	if len(b) > maxKeyMessage {
		return 0, nil, fmt.Errorf("%w: key message of %d bytes exceeds the %d-byte limit", ErrMalformedKey, len(b), maxKeyMessage)
	}
	rest := b
	if len(rest) == 0 || rest[0] != pbTagType {
		return 0, nil, fmt.Errorf("%w: key message must start with the Type field (tag 0x%02x)", ErrMalformedKey, pbTagType)
	}
	rest = rest[1:]
	t, n, err := varint.FromUvarint(rest)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: reading Type field: %w", ErrMalformedKey, err)
	}
	rest = rest[n:]
	if len(rest) == 0 || rest[0] != pbTagData {
		return 0, nil, fmt.Errorf("%w: Type field must be followed by the Data field (tag 0x%02x)", ErrMalformedKey, pbTagData)
	}
	rest = rest[1:]
	l, n, err := varint.FromUvarint(rest)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: reading Data length: %w", ErrMalformedKey, err)
	}
	rest = rest[n:]
	if l > uint64(len(rest)) {
		return 0, nil, fmt.Errorf("%w: Data field truncated: length %d, %d bytes left", ErrMalformedKey, l, len(rest))
	}
	if l < uint64(len(rest)) {
		return 0, nil, fmt.Errorf("%w: %d bytes after the Data field", ErrMalformedKey, uint64(len(rest))-l)
	}
	if t > uint64(ECDSA) {
		return 0, nil, fmt.Errorf("%w: %d", ErrUnknownKeyType, t)
	}
	return KeyType(t), rest, nil
}
