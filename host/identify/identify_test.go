package identify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newKey(t testing.TB, kt peer.KeyType) (peer.PrivKey, peer.ID) {
	t.Helper()
	k, err := peer.GenerateKey(kt, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func fullMessage(t testing.TB, k peer.PrivKey, id peer.ID) Message {
	t.Helper()
	pub, err := peer.MarshalPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	addrs := []ma.Multiaddr{ma.StringCast("/ip4/10.0.0.1/tcp/4001"), ma.StringCast("/ip6/::1/tcp/4002")}
	rec, err := SealRecord(k, PeerRecord{PeerID: id, Seq: 7, Addrs: addrs})
	if err != nil {
		t.Fatal(err)
	}
	return Message{
		ProtocolVersion: "ipfs/0.1.0", AgentVersion: "concord/test", PublicKey: pub,
		ListenAddrs: addrs, ObservedAddr: ma.StringCast("/ip4/192.0.2.7/tcp/55555"),
		Protocols: []string{"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"}, SignedPeerRecord: rec,
	}
}

func equalMessages(a, b Message) bool {
	eqAddrs := func(x, y []ma.Multiaddr) bool {
		return slices.EqualFunc(x, y, func(p, q ma.Multiaddr) bool { return p.Equal(q) })
	}
	obs := (a.ObservedAddr == nil) == (b.ObservedAddr == nil) && (a.ObservedAddr == nil || a.ObservedAddr.Equal(b.ObservedAddr))
	return a.ProtocolVersion == b.ProtocolVersion && a.AgentVersion == b.AgentVersion &&
		bytes.Equal(a.PublicKey, b.PublicKey) && eqAddrs(a.ListenAddrs, b.ListenAddrs) && obs &&
		slices.Equal(a.Protocols, b.Protocols) && bytes.Equal(a.SignedPeerRecord, b.SignedPeerRecord)
}

// TestWireBytes pins the encoding of a small message, worked out by hand
// from the .proto field numbers: protocols is field 3 (tag 0x1a),
// agentVersion field 6 (tag 0x32), observedAddr field 4 (tag 0x22).
func TestWireBytes(t *testing.T) {
	m := Message{AgentVersion: "a", Protocols: []string{"/x"}, ObservedAddr: ma.StringCast("/ip4/1.2.3.4")}
	got := hex.EncodeToString(m.Marshal())
	want := "1a022f78" + "2205" + "0401020304" + "320161"
	if got != want {
		t.Fatalf("Marshal = %s, want %s", got, want)
	}
}

func TestRoundTrip(t *testing.T) {
	k, id := newKey(t, peer.Ed25519)
	m := fullMessage(t, k, id)
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !equalMessages(got, m) {
		t.Fatalf("Read(Write(m)) = %+v, want %+v", got, m)
	}
	want := HasProtocolVersion | HasAgentVersion | HasPublicKey | HasListenAddrs | HasObservedAddr | HasProtocols | HasSignedPeerRecord
	if got.Has != want {
		t.Fatalf("Has = %b, want %b", got.Has, want)
	}
	info, err := Check(got, id)
	if err != nil {
		t.Fatal(err)
	}
	if info.Record == nil || info.Record.Seq != 7 || len(info.Record.Addrs) != 2 || !info.PublicKey.Equal(k.Public()) {
		t.Fatalf("Check = %+v", info)
	}
}

// TestChunked: a message over 2 KiB with a record goes out as two
// messages, the record alone in the second, and reads back whole.
func TestChunked(t *testing.T) {
	k, id := newKey(t, peer.Ed25519)
	m := fullMessage(t, k, id)
	for i := range 100 {
		m.Protocols = append(m.Protocols, "/a/protocol/with/a/long/name/"+strings.Repeat("x", i%7))
	}
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	first, n := protowire.ConsumeBytes(b)
	if n < 0 {
		t.Fatal("no first message")
	}
	second, n2 := protowire.ConsumeBytes(b[n:])
	if n2 < 0 || n+n2 != len(b) {
		t.Fatalf("want exactly two messages in %d bytes", len(b))
	}
	var m1, m2 Message
	if err := m1.Unmarshal(first); err != nil || m1.Has&HasSignedPeerRecord != 0 {
		t.Fatalf("first message: %v, has %b", err, m1.Has)
	}
	if err := m2.Unmarshal(second); err != nil || m2.Has != HasSignedPeerRecord {
		t.Fatalf("second message: %v, has %b", err, m2.Has)
	}
	got, err := Read(bytes.NewReader(b))
	if err != nil || !equalMessages(got, m) {
		t.Fatalf("Read = %v; equal %v", err, equalMessages(got, m))
	}
}

func TestReadLimits(t *testing.T) {
	one := protowire.AppendBytes(nil, Message{AgentVersion: "a"}.Marshal())
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty stream", nil, ErrMalformed},
		{"too many messages", bytes.Repeat(one, MaxMessages+1), ErrMalformed},
		{"oversized message", protowire.AppendVarint(nil, MaxMessageSize+1), ErrMalformed},
		{"huge length prefix", protowire.AppendVarint(nil, 1<<40), ErrMalformed},
		{"non-minimal prefix", []byte{0x81, 0x00}, ErrMalformed},
		{"truncated message", one[:len(one)-1], io.ErrUnexpectedEOF},
		{"truncated prefix", []byte{0x80}, io.ErrUnexpectedEOF},
		{"wrong wire type", protowire.AppendBytes(nil, protowire.AppendVarint(protowire.AppendTag(nil, 6, protowire.VarintType), 1)), ErrMalformed},
		{"bad observed address", protowire.AppendBytes(nil, protowire.AppendBytes(protowire.AppendTag(nil, 4, protowire.BytesType), []byte{0xff})), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tc.in))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Read = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := Read(bytes.NewReader(bytes.Repeat(one, MaxMessages))); err != nil {
		t.Fatalf("Read of %d messages: %v", MaxMessages, err)
	}
	var many []byte
	for range MaxProtocols + 1 {
		many = protowire.AppendString(protowire.AppendTag(many, fieldProtocols, protowire.BytesType), "/p")
	}
	var m Message
	if err := m.Unmarshal(many); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Unmarshal of %d protocols = %v, want ErrMalformed", MaxProtocols+1, err)
	}
}

// TestUnknownFieldsSkipped: fields of later versions (a varint 7, a
// fixed64 9) do not fail the parse.
func TestUnknownFieldsSkipped(t *testing.T) {
	b := protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 3)
	b = protowire.AppendFixed64(protowire.AppendTag(b, 9, protowire.Fixed64Type), 3)
	b = append(b, Message{AgentVersion: "x"}.Marshal()...)
	var m Message
	if err := m.Unmarshal(b); err != nil || m.AgentVersion != "x" || m.Has != HasAgentVersion {
		t.Fatalf("Unmarshal = %v, %+v", err, m)
	}
}

func TestCheck(t *testing.T) {
	k, id := newKey(t, peer.Ed25519)
	other, otherID := newKey(t, peer.Ed25519)
	good := fullMessage(t, k, id)

	wrongKey := good
	wrongKey.PublicKey, _ = peer.MarshalPublicKey(other.Public())
	if _, err := Check(wrongKey, id); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("another peer's key: %v, want ErrKeyMismatch", err)
	}
	if _, err := Check(good, otherID); !errors.Is(err, ErrKeyMismatch) {
		t.Errorf("checked against another peer: %v, want ErrKeyMismatch", err)
	}
	otherRec := good
	otherRec.SignedPeerRecord = fullMessage(t, other, otherID).SignedPeerRecord
	if _, err := Check(otherRec, id); !errors.Is(err, ErrBadRecord) {
		t.Errorf("another peer's record: %v, want ErrBadRecord", err)
	}
	noKey := good
	noKey.PublicKey, noKey.Has = nil, 0
	if info, err := Check(noKey, id); err != nil || info.PublicKey != nil || info.Record == nil {
		t.Errorf("no key: %+v, %v", info, err)
	}
}

func TestRecordEveryKeyType(t *testing.T) {
	for _, kt := range []peer.KeyType{peer.Ed25519, peer.Secp256k1, peer.ECDSA, peer.RSA} {
		t.Run(kt.String(), func(t *testing.T) {
			k, id := newKey(t, kt)
			rec := PeerRecord{PeerID: id, Seq: RecordSeq(), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}
			env, err := SealRecord(k, rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := OpenRecord(env, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.PeerID != id || got.Seq != rec.Seq || len(got.Addrs) != 1 || !got.Addrs[0].Equal(rec.Addrs[0]) {
				t.Fatalf("OpenRecord = %+v, want %+v", got, rec)
			}
		})
	}
}

// TestRecordTampered flips each byte of an envelope in turn: no flip may
// yield a record that opens with different contents. (A flip inside an
// unknown or ignored part may still open, with the same record.)
func TestRecordTampered(t *testing.T) {
	k, id := newKey(t, peer.Ed25519)
	rec := PeerRecord{PeerID: id, Seq: 42, Addrs: []ma.Multiaddr{ma.StringCast("/ip4/10.1.2.3/tcp/4001")}}
	env, err := SealRecord(k, rec)
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		bad := slices.Clone(env)
		bad[i] ^= 0x01
		got, err := OpenRecord(bad, id)
		if err == nil && (got.Seq != rec.Seq || !got.Addrs[0].Equal(rec.Addrs[0])) {
			t.Fatalf("byte %d flipped: opened as %+v", i, got)
		}
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("byte %d flipped: %v, want ErrBadRecord", i, err)
		}
	}
	if _, err := SealRecord(k, PeerRecord{PeerID: peer.ID("x")}); err == nil {
		t.Fatal("SealRecord with another peer ID succeeded")
	}
}

// TestRecordSignedInput pins what the signature covers (RFC 0002): the
// varint-prefixed domain, payload type and payload.
func TestRecordSignedInput(t *testing.T) {
	got := unsignedEnvelope("ab", []byte{0x03, 0x01}, []byte{9})
	want := []byte{2, 'a', 'b', 2, 0x03, 0x01, 1, 9}
	if !bytes.Equal(got, want) {
		t.Fatalf("unsignedEnvelope = %x, want %x", got, want)
	}
}

func TestUpdate(t *testing.T) {
	k, id := newKey(t, peer.Ed25519)
	m := fullMessage(t, k, id)
	base, err := Check(m, id)
	if err != nil {
		t.Fatal(err)
	}
	push := Message{Protocols: []string{"/new/1.0.0"}, Has: HasProtocols}
	checked, err := Check(push, id)
	if err != nil {
		t.Fatal(err)
	}
	got := base.Update(push, checked)
	if !slices.Equal(got.Protocols, []string{"/new/1.0.0"}) || got.AgentVersion != base.AgentVersion || len(got.ListenAddrs) != 2 || got.Record == nil {
		t.Fatalf("Update = %+v", got)
	}
	if !got.Supports("/new/1.0.0") || got.Supports(ID) {
		t.Fatal("Supports does not follow the pushed protocols")
	}
}

func TestRecordSeqIncreases(t *testing.T) {
	prev := RecordSeq()
	for range 1000 {
		n := RecordSeq()
		if n <= prev {
			t.Fatalf("RecordSeq %d after %d", n, prev)
		}
		prev = n
	}
}
