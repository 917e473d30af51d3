package identify

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
)

// Specification constants (identify/README.md).
const (
	// ID is the protocol on which a peer asks another for its Identify
	// message.
	ID = "/ipfs/id/1.0.0"
	// PushID is the protocol on which a peer sends its Identify message
	// unasked, when its protocols or addresses change.
	PushID = "/ipfs/id/push/1.0.0"
)

// Identify message fields (proto2, identify/README.md and go-libp2p's
// identify.proto):
//
//	message Identify {
//	  optional bytes  publicKey        = 1;
//	  repeated bytes  listenAddrs      = 2;
//	  repeated string protocols        = 3;
//	  optional bytes  observedAddr     = 4;
//	  optional string protocolVersion  = 5;
//	  optional string agentVersion     = 6;
//	  optional bytes  signedPeerRecord = 8;  // an RFC 0002 envelope
//	}
//
// On the stream each message is prefixed with its length as an unsigned
// varint; a response may come in several messages, which merge (go-libp2p
// sends the signed record in a second one when the first would pass 2 KiB).
const (
	fieldPublicKey        protowire.Number = 1
	fieldListenAddrs      protowire.Number = 2
	fieldProtocols        protowire.Number = 3
	fieldObservedAddr     protowire.Number = 4
	fieldProtocolVersion  protowire.Number = 5
	fieldAgentVersion     protowire.Number = 6
	fieldSignedPeerRecord protowire.Number = 8
)

// Implementation constants.
const (
	// MaxMessageSize bounds one length-prefixed message read (go-libp2p's
	// limit for messages with a signed record).
	MaxMessageSize = 8 << 10
	// MaxMessages bounds the messages of one response or push (go-libp2p's
	// limit).
	MaxMessages = 10
	// MaxProtocols and MaxAddrs bound what is kept of one peer's lists;
	// more is an error, not truncation, so that a peer cannot hide what it
	// sent.
	MaxProtocols = 1024
	MaxAddrs     = 256
	// chunkAt is the size above which Write sends the signed record in a
	// message of its own, as go-libp2p does for peers that accept only
	// 2 KiB messages without one.
	chunkAt = 2 << 10
)

// Errors of reading and checking an Identify message.
var (
	// ErrMalformed: the bytes are not an Identify message, or exceed its
	// limits (MaxMessageSize, MaxMessages, MaxProtocols, MaxAddrs).
	ErrMalformed = errors.New("identify: malformed message")
	// ErrKeyMismatch: the message's public key is not the key of the peer
	// the connection authenticated.
	ErrKeyMismatch = errors.New("identify: public key is not the peer's")
)

// Message is an Identify message as on the wire, every field optional.
// Has tells which fields were present: a push replaces only those
// (identify/README.md: "missing fields should be ignored").
type Message struct {
	ProtocolVersion string
	AgentVersion    string
	PublicKey       []byte // the peer-ids spec's PublicKey message
	ListenAddrs     []ma.Multiaddr
	ObservedAddr    ma.Multiaddr
	Protocols       []string
	// SignedPeerRecord is the envelope as sent, unverified.
	SignedPeerRecord []byte

	Has Fields
}

// Fields is a set of Identify fields.
type Fields uint8

const (
	HasProtocolVersion Fields = 1 << iota
	HasAgentVersion
	HasPublicKey
	HasListenAddrs
	HasObservedAddr
	HasProtocols
	HasSignedPeerRecord
)

// Marshal encodes m as one protobuf message, fields in number order. Only
// the fields in m.Has are written, except that a non-empty value sets its
// bit: a Message built by hand need not fill Has.
func (m Message) Marshal() []byte {
	has := m.Has | m.present()
	var b []byte
	if has&HasPublicKey != 0 {
		b = protowire.AppendTag(b, fieldPublicKey, protowire.BytesType)
		b = protowire.AppendBytes(b, m.PublicKey)
	}
	for _, a := range m.ListenAddrs {
		b = protowire.AppendTag(b, fieldListenAddrs, protowire.BytesType)
		b = protowire.AppendBytes(b, a.Bytes())
	}
	for _, p := range m.Protocols {
		b = protowire.AppendTag(b, fieldProtocols, protowire.BytesType)
		b = protowire.AppendString(b, p)
	}
	if has&HasObservedAddr != 0 && m.ObservedAddr != nil {
		b = protowire.AppendTag(b, fieldObservedAddr, protowire.BytesType)
		b = protowire.AppendBytes(b, m.ObservedAddr.Bytes())
	}
	if has&HasProtocolVersion != 0 {
		b = protowire.AppendTag(b, fieldProtocolVersion, protowire.BytesType)
		b = protowire.AppendString(b, m.ProtocolVersion)
	}
	if has&HasAgentVersion != 0 {
		b = protowire.AppendTag(b, fieldAgentVersion, protowire.BytesType)
		b = protowire.AppendString(b, m.AgentVersion)
	}
	if has&HasSignedPeerRecord != 0 {
		b = protowire.AppendTag(b, fieldSignedPeerRecord, protowire.BytesType)
		b = protowire.AppendBytes(b, m.SignedPeerRecord)
	}
	return b
}

func (m Message) present() Fields {
	var f Fields
	set := func(ok bool, bit Fields) {
		if ok {
			f |= bit
		}
	}
	set(m.ProtocolVersion != "", HasProtocolVersion)
	set(m.AgentVersion != "", HasAgentVersion)
	set(len(m.PublicKey) > 0, HasPublicKey)
	set(len(m.ListenAddrs) > 0, HasListenAddrs)
	set(m.ObservedAddr != nil, HasObservedAddr)
	set(len(m.Protocols) > 0, HasProtocols)
	set(len(m.SignedPeerRecord) > 0, HasSignedPeerRecord)
	return f
}

// Unmarshal decodes one protobuf Identify message and merges it into m,
// as protobuf merges: a scalar field present replaces m's, a repeated one
// appends. Unknown fields are skipped. Listen addresses that are not
// multiaddrs are dropped (go-libp2p does the same); an observed address
// that is not one is an error.
func (m *Message) Unmarshal(b []byte) error {
	err := forEachField(b, func(num protowire.Number, wt protowire.Type, v []byte, _ uint64) error {
		switch num {
		case fieldPublicKey, fieldListenAddrs, fieldProtocols, fieldObservedAddr,
			fieldProtocolVersion, fieldAgentVersion, fieldSignedPeerRecord:
		default:
			return nil
		}
		if wt != protowire.BytesType {
			return fmt.Errorf("field %d has wire type %d", num, wt)
		}
		switch num {
		case fieldPublicKey:
			m.PublicKey, m.Has = slices.Clone(v), m.Has|HasPublicKey
		case fieldListenAddrs:
			m.Has |= HasListenAddrs
			if len(m.ListenAddrs) == MaxAddrs {
				return fmt.Errorf("more than %d listen addresses", MaxAddrs)
			}
			if a, err := ma.NewMultiaddrBytes(v); err == nil {
				m.ListenAddrs = append(m.ListenAddrs, a)
			}
		case fieldProtocols:
			m.Has |= HasProtocols
			if len(m.Protocols) == MaxProtocols {
				return fmt.Errorf("more than %d protocols", MaxProtocols)
			}
			m.Protocols = append(m.Protocols, string(v))
		case fieldObservedAddr:
			a, err := ma.NewMultiaddrBytes(v)
			if err != nil {
				return fmt.Errorf("observed address: %w", err)
			}
			m.ObservedAddr, m.Has = a, m.Has|HasObservedAddr
		case fieldProtocolVersion:
			m.ProtocolVersion, m.Has = string(v), m.Has|HasProtocolVersion
		case fieldAgentVersion:
			m.AgentVersion, m.Has = string(v), m.Has|HasAgentVersion
		case fieldSignedPeerRecord:
			m.SignedPeerRecord, m.Has = slices.Clone(v), m.Has|HasSignedPeerRecord
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// Read reads the messages of one response or push until EOF and merges
// them: at most MaxMessages, each at most MaxMessageSize bytes. It does not
// bound time; the caller binds a deadline to r (internal/ctxconn).
func Read(r io.Reader) (Message, error) {
	var m Message
	br := bufio.NewReaderSize(r, 512)
	for i := 0; ; i++ {
		n, err := readUvarint(br)
		if errors.Is(err, io.EOF) {
			if i == 0 {
				return m, fmt.Errorf("%w: stream closed before any message", ErrMalformed)
			}
			return m, nil
		}
		if err != nil {
			return m, err
		}
		if i == MaxMessages {
			return m, fmt.Errorf("%w: more than %d messages", ErrMalformed, MaxMessages)
		}
		if n > MaxMessageSize {
			return m, fmt.Errorf("%w: message of %d bytes, the limit is %d", ErrMalformed, n, MaxMessageSize)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return m, fmt.Errorf("identify: reading a %d-byte message: %w", n, err)
		}
		if err := m.Unmarshal(buf); err != nil {
			return m, err
		}
	}
}

// readUvarint reads a length prefix: io.EOF only before its first byte;
// a non-minimal or overlong varint is ErrMalformed.
func readUvarint(br *bufio.Reader) (uint64, error) {
	var x uint64
	for i := 0; i < binaryMaxVarintLen; i++ {
		c, err := br.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if c < 0x80 {
			if i > 0 && c == 0 {
				return 0, fmt.Errorf("%w: non-minimal length prefix", ErrMalformed)
			}
			return x | uint64(c)<<(7*i), nil
		}
		x |= uint64(c&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: length prefix too long", ErrMalformed)
}

// A length prefix of MaxMessageSize fits in 2 bytes; 3 leaves room to
// report a larger one as too large rather than malformed.
const binaryMaxVarintLen = 3

// Write sends m as a response or push: one length-prefixed message, or two
// when it is larger than 2 KiB and carries a signed record (the record goes
// alone in the second). A message larger than MaxMessageSize is refused
// before anything is written.
func Write(w io.Writer, m Message) error {
	parts := []Message{m}
	if full := m.Marshal(); len(full) > chunkAt && len(m.SignedPeerRecord) > 0 {
		rest := m
		rest.SignedPeerRecord, rest.Has = nil, m.Has&^HasSignedPeerRecord
		parts = []Message{rest, {SignedPeerRecord: m.SignedPeerRecord, Has: HasSignedPeerRecord}}
	}
	var out []byte
	for _, p := range parts {
		b := p.Marshal()
		if len(b) > MaxMessageSize {
			return fmt.Errorf("identify: message of %d bytes, the limit is %d", len(b), MaxMessageSize)
		}
		out = protowire.AppendBytes(out, b)
	}
	_, err := w.Write(out)
	return err
}

// Info is what a peer told about itself, checked against the connection's
// authenticated peer ID.
type Info struct {
	ProtocolVersion string
	AgentVersion    string
	// PublicKey is the key the message carried, which Check verified is
	// the peer's; nil if the message had none.
	PublicKey peer.PubKey
	// ListenAddrs are the addresses the peer says it listens on.
	ListenAddrs []ma.Multiaddr
	// ObservedAddr is this side's address as the peer sees it; nil if not
	// sent.
	ObservedAddr ma.Multiaddr
	// Protocols are the protocols the peer serves.
	Protocols []string
	// Record is the signed peer record, verified; nil if none was sent.
	Record *PeerRecord
}

// Supports reports whether the peer listed protocol.
func (i Info) Supports(protocol string) bool { return slices.Contains(i.Protocols, protocol) }

// Check verifies m against the peer ID the connection authenticated: its
// public key, if present, must be remote's (ErrKeyMismatch), and its signed
// peer record, if present, must be remote's and carry a valid signature
// (ErrBadRecord). It returns what m tells.
func Check(m Message, remote peer.ID) (Info, error) {
	has := m.Has | m.present()
	info := Info{
		ProtocolVersion: m.ProtocolVersion, AgentVersion: m.AgentVersion,
		ListenAddrs: m.ListenAddrs, ObservedAddr: m.ObservedAddr, Protocols: m.Protocols,
	}
	if has&HasPublicKey != 0 {
		k, err := peer.UnmarshalPublicKey(m.PublicKey)
		if err != nil {
			return Info{}, fmt.Errorf("%w: %w", ErrKeyMismatch, err)
		}
		if !remote.MatchesPublicKey(k) {
			return Info{}, fmt.Errorf("%w: the key's peer ID is not %s", ErrKeyMismatch, remote.ShortString())
		}
		info.PublicKey = k
	}
	if has&HasSignedPeerRecord != 0 {
		r, err := OpenRecord(m.SignedPeerRecord, remote)
		if err != nil {
			return Info{}, err
		}
		info.Record = &r
	}
	return info, nil
}

// Update applies a checked push to i: each field the push carried replaces
// i's, the others stay (identify/README.md). A record with a smaller
// sequence number than i's does not replace it.
func (i Info) Update(push Message, checked Info) Info {
	push.Has |= push.present()
	if push.Has&HasProtocolVersion != 0 {
		i.ProtocolVersion = checked.ProtocolVersion
	}
	if push.Has&HasAgentVersion != 0 {
		i.AgentVersion = checked.AgentVersion
	}
	if push.Has&HasPublicKey != 0 {
		i.PublicKey = checked.PublicKey
	}
	if push.Has&HasListenAddrs != 0 {
		i.ListenAddrs = checked.ListenAddrs
	}
	if push.Has&HasObservedAddr != 0 {
		i.ObservedAddr = checked.ObservedAddr
	}
	if push.Has&HasProtocols != 0 {
		i.Protocols = checked.Protocols
	}
	if push.Has&HasSignedPeerRecord != 0 && (i.Record == nil || checked.Record.Seq >= i.Record.Seq) {
		i.Record = checked.Record
	}
	return i
}
