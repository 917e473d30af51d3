package identify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
)

// Specification constants of the signed envelope (libp2p RFC 0002) and the
// peer record (RFC 0003).
const (
	// RecordDomain is the signature domain of a peer record's envelope.
	RecordDomain = "libp2p-peer-record"
)

// RecordPayloadType is the envelope payload type of a peer record: the
// multicodec libp2p-peer-record (0x0301) as an unsigned varint.
var RecordPayloadType = []byte{0x03, 0x01}

// Envelope fields (RFC 0002):
//
//	message Envelope {
//	  PublicKey public_key = 1;  // the peer-ids spec's key message
//	  bytes payload_type = 2;
//	  bytes payload = 3;
//	  bytes signature = 5;       // over varint-prefixed domain, type, payload
//	}
const (
	envPublicKey   protowire.Number = 1
	envPayloadType protowire.Number = 2
	envPayload     protowire.Number = 3
	envSignature   protowire.Number = 5
)

// PeerRecord fields (RFC 0003):
//
//	message PeerRecord {
//	  message AddressInfo { bytes multiaddr = 1; }
//	  bytes peer_id = 1;
//	  uint64 seq = 2;
//	  repeated AddressInfo addresses = 3;
//	}
const (
	recPeerID    protowire.Number = 1
	recSeq       protowire.Number = 2
	recAddresses protowire.Number = 3
	addrInfoAddr protowire.Number = 1
)

// ErrBadRecord is wrapped by every reason a signed peer record is refused:
// an envelope or record that does not parse, another payload type, a bad
// signature, a signing key or peer ID that is not the peer's.
var ErrBadRecord = errors.New("identify: bad signed peer record")

// PeerRecord is a peer's signed statement of its addresses (RFC 0003).
// Seq orders the records of one peer: a larger one supersedes.
type PeerRecord struct {
	PeerID peer.ID
	Seq    uint64
	Addrs  []ma.Multiaddr
}

// SealRecord marshals r and signs it with key in a signed envelope, the
// form identify's signedPeerRecord carries. r.PeerID must be key's.
func SealRecord(key peer.PrivKey, r PeerRecord) ([]byte, error) {
	if !r.PeerID.MatchesPrivateKey(key) {
		return nil, fmt.Errorf("identify: sealing record: peer ID %s is not the signing key's", r.PeerID.ShortString())
	}
	payload := r.marshal()
	sig, err := key.Sign(unsignedEnvelope(RecordDomain, RecordPayloadType, payload))
	if err != nil {
		return nil, fmt.Errorf("identify: signing record: %w", err)
	}
	pub, err := peer.MarshalPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("identify: sealing record: %w", err)
	}
	var b []byte
	b = protowire.AppendTag(b, envPublicKey, protowire.BytesType)
	b = protowire.AppendBytes(b, pub)
	b = protowire.AppendTag(b, envPayloadType, protowire.BytesType)
	b = protowire.AppendBytes(b, RecordPayloadType)
	b = protowire.AppendTag(b, envPayload, protowire.BytesType)
	b = protowire.AppendBytes(b, payload)
	b = protowire.AppendTag(b, envSignature, protowire.BytesType)
	b = protowire.AppendBytes(b, sig)
	return b, nil
}

// OpenRecord parses a signed envelope holding a peer record, checks the
// signature with the envelope's key, and checks that the key and the
// record's peer ID are both want's. Errors wrap ErrBadRecord.
func OpenRecord(envelope []byte, want peer.ID) (PeerRecord, error) {
	var pubBytes, typ, payload, sig []byte
	err := forEachField(envelope, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) error {
		dst := map[protowire.Number]*[]byte{envPublicKey: &pubBytes, envPayloadType: &typ, envPayload: &payload, envSignature: &sig}[num]
		if dst == nil {
			return nil // unknown field
		}
		if wt != protowire.BytesType {
			return fmt.Errorf("envelope field %d has wire type %d", num, wt)
		}
		*dst = v
		return nil
	})
	if err != nil {
		return PeerRecord{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	pub, err := peer.UnmarshalPublicKey(pubBytes)
	if err != nil {
		return PeerRecord{}, fmt.Errorf("%w: envelope key: %w", ErrBadRecord, err)
	}
	if !want.MatchesPublicKey(pub) {
		return PeerRecord{}, fmt.Errorf("%w: signed by a key that is not peer %s's", ErrBadRecord, want.ShortString())
	}
	if !bytes.Equal(typ, RecordPayloadType) {
		return PeerRecord{}, fmt.Errorf("%w: payload type %x, want %x", ErrBadRecord, typ, RecordPayloadType)
	}
	ok, err := pub.Verify(unsignedEnvelope(RecordDomain, typ, payload), sig)
	if err != nil || !ok {
		return PeerRecord{}, fmt.Errorf("%w: signature does not verify (%v)", ErrBadRecord, err)
	}
	r, err := parseRecord(payload)
	if err != nil {
		return PeerRecord{}, fmt.Errorf("%w: %w", ErrBadRecord, err)
	}
	if r.PeerID != want {
		return PeerRecord{}, fmt.Errorf("%w: record of peer %s, want %s", ErrBadRecord, r.PeerID.ShortString(), want.ShortString())
	}
	return r, nil
}

// unsignedEnvelope is what an envelope's signature covers (RFC 0002): the
// domain, the payload type and the payload, each prefixed with its length
// as an unsigned varint.
func unsignedEnvelope(domain string, typ, payload []byte) []byte {
	b := make([]byte, 0, 3*binary.MaxVarintLen64+len(domain)+len(typ)+len(payload))
	for _, f := range [][]byte{[]byte(domain), typ, payload} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func (r PeerRecord) marshal() []byte {
	var b []byte
	b = protowire.AppendTag(b, recPeerID, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte(r.PeerID))
	b = protowire.AppendTag(b, recSeq, protowire.VarintType)
	b = protowire.AppendVarint(b, r.Seq)
	for _, a := range r.Addrs {
		var ai []byte
		ai = protowire.AppendTag(ai, addrInfoAddr, protowire.BytesType)
		ai = protowire.AppendBytes(ai, a.Bytes())
		b = protowire.AppendTag(b, recAddresses, protowire.BytesType)
		b = protowire.AppendBytes(b, ai)
	}
	return b
}

func parseRecord(b []byte) (PeerRecord, error) {
	var r PeerRecord
	var idBytes []byte
	err := forEachField(b, func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error {
		switch num {
		case recPeerID:
			if wt != protowire.BytesType {
				return fmt.Errorf("record peer_id has wire type %d", wt)
			}
			idBytes = v
		case recSeq:
			if wt != protowire.VarintType {
				return fmt.Errorf("record seq has wire type %d", wt)
			}
			r.Seq = n
		case recAddresses:
			if wt != protowire.BytesType {
				return fmt.Errorf("record address has wire type %d", wt)
			}
			var raw []byte
			err := forEachField(v, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) error {
				if num == addrInfoAddr {
					if wt != protowire.BytesType {
						return fmt.Errorf("record multiaddr has wire type %d", wt)
					}
					raw = v
				}
				return nil
			})
			if err != nil {
				return err
			}
			a, err := ma.NewMultiaddrBytes(raw)
			if err != nil {
				return fmt.Errorf("record address: %w", err)
			}
			r.Addrs = append(r.Addrs, a)
		}
		return nil
	})
	if err != nil {
		return r, err
	}
	if r.PeerID, err = peer.IDFromBytes(idBytes); err != nil {
		return r, fmt.Errorf("record peer ID: %w", err)
	}
	return r, nil
}

// forEachField calls fn for each field of the protobuf message b, in order:
// v holds a length-delimited field's bytes (aliasing b), n a varint's or
// fixed field's value. Groups are refused: no message here has one.
func forEachField(b []byte, fn func(num protowire.Number, wt protowire.Type, v []byte, n uint64) error) error {
	for len(b) > 0 {
		num, wt, l := protowire.ConsumeTag(b)
		if l < 0 {
			return fmt.Errorf("field tag: %w", protowire.ParseError(l))
		}
		b = b[l:]
		var v []byte
		var n uint64
		switch wt {
		case protowire.BytesType:
			v, l = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			n, l = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x uint32
			x, l = protowire.ConsumeFixed32(b)
			n = uint64(x)
		case protowire.Fixed64Type:
			n, l = protowire.ConsumeFixed64(b)
		default:
			return fmt.Errorf("field %d: wire type %d not allowed", num, wt)
		}
		if l < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(l))
		}
		b = b[l:]
		if err := fn(num, wt, v, n); err != nil {
			return err
		}
	}
	return nil
}

// RecordSeq returns a sequence number for a new record: the wall clock in
// nanoseconds, strictly increasing within the process, so a record sealed
// later supersedes an earlier one also across restarts (as go-libp2p's
// TimestampSeq does).
func RecordSeq() uint64 {
	seqMu.Lock()
	defer seqMu.Unlock()
	now := uint64(time.Now().UnixNano())
	if now <= lastSeq {
		now = lastSeq + 1
	}
	lastSeq = now
	return now
}

var (
	seqMu   sync.Mutex
	lastSeq uint64 // guarded by seqMu
)
