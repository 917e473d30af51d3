package noise

import (
	"fmt"
	"unicode/utf8"

	"github.com/concordp2p/concord/security"
)

// The handshake payload protobuf (noise/README.md, "The libp2p Handshake
// Payload", and go-libp2p's payload.proto, proto2):
//
//	message NoiseExtensions {
//		repeated bytes  webtransport_certhashes = 1;
//		repeated string stream_muxers           = 2;
//	}
//	message NoiseHandshakePayload {
//		optional bytes           identity_key = 1; // PublicKey protobuf (peer-ids spec)
//		optional bytes           identity_sig = 2; // over "noise-libp2p-static-key:" || static key
//		optional NoiseExtensions extensions   = 4;
//	}
const (
	fieldIdentityKey = 1
	fieldIdentitySig = 2
	fieldExtensions  = 4

	fieldCerthashes   = 1
	fieldStreamMuxers = 2
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// Decoder limits beyond the ones in package security.
const (
	maxCerthashes   = 100
	maxCerthashSize = 1024
)

// payload is a decoded NoiseHandshakePayload.
type payload struct {
	identityKey []byte
	identitySig []byte
	// hasExtensions records whether field 4 was present at all.
	hasExtensions bool
	muxers        []string
	// certhashes are decoded for bounds checking only; Concord does not
	// run WebTransport.
	certhashes [][]byte
}

// errMalformed wraps every payload decoding failure.
var errMalformed = fmt.Errorf("%w: malformed handshake payload", security.ErrProtocol)

// marshal appends the payload's protobuf encoding to b. Absent fields are
// omitted; extensions are written only when muxers are non-empty.
func (p *payload) marshal(b []byte) []byte {
	b = appendBytesField(b, fieldIdentityKey, p.identityKey)
	b = appendBytesField(b, fieldIdentitySig, p.identitySig)
	if len(p.muxers) > 0 || len(p.certhashes) > 0 {
		n := 0
		for _, h := range p.certhashes {
			n += fieldLen(fieldCerthashes, len(h))
		}
		for _, m := range p.muxers {
			n += fieldLen(fieldStreamMuxers, len(m))
		}
		b = appendVarint(b, fieldExtensions<<3|wireBytes)
		b = appendVarint(b, uint64(n))
		for _, h := range p.certhashes {
			b = appendBytesField(b, fieldCerthashes, h)
		}
		for _, m := range p.muxers {
			b = appendBytesField(b, fieldStreamMuxers, []byte(m))
		}
	}
	return b
}

// unmarshalPayload decodes b strictly: a known field with the wrong wire
// type, a known singular field repeated, a group, a truncated or overlong
// varint, or a list beyond the limits is an error. Unknown fields are
// skipped, as protobuf requires. The returned slices alias b.
func unmarshalPayload(b []byte) (*payload, error) {
	p := &payload{}
	seen := map[uint64]bool{}
	for len(b) > 0 {
		num, typ, val, rest, err := nextField(b)
		if err != nil {
			return nil, err
		}
		b = rest
		switch num {
		case fieldIdentityKey, fieldIdentitySig, fieldExtensions:
			if typ != wireBytes {
				return nil, fmt.Errorf("%w: field %d has wire type %d, want 2", errMalformed, num, typ)
			}
			if seen[num] {
				return nil, fmt.Errorf("%w: field %d repeated", errMalformed, num)
			}
			seen[num] = true
		}
		switch num {
		case fieldIdentityKey:
			p.identityKey = val
		case fieldIdentitySig:
			p.identitySig = val
		case fieldExtensions:
			p.hasExtensions = true
			if err := p.unmarshalExtensions(val); err != nil {
				return nil, err
			}
		}
	}
	return p, nil
}

func (p *payload) unmarshalExtensions(b []byte) error {
	for len(b) > 0 {
		num, typ, val, rest, err := nextField(b)
		if err != nil {
			return err
		}
		b = rest
		switch num {
		case fieldCerthashes:
			if typ != wireBytes {
				return fmt.Errorf("%w: extensions field %d has wire type %d, want 2", errMalformed, num, typ)
			}
			if len(p.certhashes) == maxCerthashes {
				return fmt.Errorf("%w: more than %d webtransport certhashes", errMalformed, maxCerthashes)
			}
			if len(val) > maxCerthashSize {
				return fmt.Errorf("%w: webtransport certhash of %d bytes, at most %d", errMalformed, len(val), maxCerthashSize)
			}
			p.certhashes = append(p.certhashes, val)
		case fieldStreamMuxers:
			if typ != wireBytes {
				return fmt.Errorf("%w: extensions field %d has wire type %d, want 2", errMalformed, num, typ)
			}
			if len(p.muxers) == security.MaxMuxers {
				return fmt.Errorf("%w: more than %d stream muxers", errMalformed, security.MaxMuxers)
			}
			if len(val) == 0 || len(val) > security.MaxMuxerNameLen {
				return fmt.Errorf("%w: stream muxer name of %d bytes, want 1 to %d", errMalformed, len(val), security.MaxMuxerNameLen)
			}
			if !utf8.Valid(val) {
				return fmt.Errorf("%w: stream muxer name is not UTF-8", errMalformed)
			}
			p.muxers = append(p.muxers, string(val))
		}
	}
	return nil
}

// nextField splits the first field off b. val is the field's bytes for wire
// type 2 and nil otherwise.
func nextField(b []byte) (num uint64, typ int, val, rest []byte, err error) {
	key, n := readVarint(b)
	if n <= 0 {
		return 0, 0, nil, nil, fmt.Errorf("%w: bad field key varint", errMalformed)
	}
	b = b[n:]
	num, typ = key>>3, int(key&7)
	if num == 0 || num > 1<<29-1 {
		return 0, 0, nil, nil, fmt.Errorf("%w: field number %d", errMalformed, num)
	}
	switch typ {
	case wireVarint:
		_, n := readVarint(b)
		if n <= 0 {
			return 0, 0, nil, nil, fmt.Errorf("%w: field %d: bad varint", errMalformed, num)
		}
		return num, typ, nil, b[n:], nil
	case wireFixed64:
		if len(b) < 8 {
			return 0, 0, nil, nil, fmt.Errorf("%w: field %d: truncated fixed64", errMalformed, num)
		}
		return num, typ, nil, b[8:], nil
	case wireFixed32:
		if len(b) < 4 {
			return 0, 0, nil, nil, fmt.Errorf("%w: field %d: truncated fixed32", errMalformed, num)
		}
		return num, typ, nil, b[4:], nil
	case wireBytes:
		l, n := readVarint(b)
		if n <= 0 {
			return 0, 0, nil, nil, fmt.Errorf("%w: field %d: bad length varint", errMalformed, num)
		}
		b = b[n:]
		if l > uint64(len(b)) {
			return 0, 0, nil, nil, fmt.Errorf("%w: field %d: length %d beyond the %d bytes left", errMalformed, num, l, len(b))
		}
		return num, typ, b[:l:l], b[l:], nil
	}
	return 0, 0, nil, nil, fmt.Errorf("%w: field %d: unsupported wire type %d", errMalformed, num, typ)
}

// readVarint decodes a base-128 varint of at most 10 bytes. n is the number
// of bytes read, or 0 when b is truncated or the varint overflows 64 bits.
func readVarint(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func varintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func fieldLen(num, size int) int {
	return varintLen(uint64(num)<<3) + varintLen(uint64(size)) + size
}

func appendBytesField(b []byte, num int, v []byte) []byte {
	if v == nil {
		return b
	}
	b = appendVarint(b, uint64(num)<<3|wireBytes)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}
