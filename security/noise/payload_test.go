package noise

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/concordp2p/concord/security"
)

func TestPayloadRoundTrip(t *testing.T) {
	for _, p := range []payload{
		{},
		{identityKey: []byte{1, 2, 3}, identitySig: []byte{4, 5}},
		{identityKey: []byte{1}, identitySig: []byte{2}, muxers: []string{"/yamux/1.0.0", "/mplex/6.7.0"}},
		{identityKey: bytes.Repeat([]byte{7}, 300), identitySig: bytes.Repeat([]byte{8}, 200), muxers: []string{"/yamux/1.0.0"}, certhashes: [][]byte{{9}}},
	} {
		b := p.marshal(nil)
		got, err := unmarshalPayload(b)
		if err != nil {
			t.Fatalf("unmarshal(marshal(%+v)): %v", p, err)
		}
		if !bytes.Equal(got.identityKey, p.identityKey) || !bytes.Equal(got.identitySig, p.identitySig) ||
			!slices.Equal(got.muxers, p.muxers) || len(got.certhashes) != len(p.certhashes) {
			t.Errorf("round trip of %+v gave %+v", p, got)
		}
	}
}

// TestPayloadWireFormat pins the encoding against hand-assembled bytes in
// the field numbers of go-libp2p's payload.proto.
func TestPayloadWireFormat(t *testing.T) {
	p := payload{identityKey: []byte{0xaa}, identitySig: []byte{0xbb, 0xcc}, muxers: []string{"/y"}}
	want := []byte{
		0x0a, 0x01, 0xaa, // identity_key = 1
		0x12, 0x02, 0xbb, 0xcc, // identity_sig = 2
		0x22, 0x04, // extensions = 4, 4 bytes
		0x12, 0x02, '/', 'y', // stream_muxers = 2
	}
	if got := p.marshal(nil); !bytes.Equal(got, want) {
		t.Fatalf("marshal = %x, want %x", got, want)
	}
}

func TestPayloadSkipsUnknownFields(t *testing.T) {
	b := []byte{
		0x0a, 0x01, 0xaa,
		0x18, 0x96, 0x01, // field 3, varint 150
		0x2d, 1, 2, 3, 4, // field 5, fixed32
		0x31, 1, 2, 3, 4, 5, 6, 7, 8, // field 6, fixed64
		0x22, 0x08, 0x1a, 0x01, 0x00, 0x12, 0x03, '/', 'm', 'x', // extensions: unknown field 3, muxer "/mx"
	}
	p, err := unmarshalPayload(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.identityKey, []byte{0xaa}) || !slices.Equal(p.muxers, []string{"/mx"}) {
		t.Errorf("decoded %+v, want identity key aa and muxers [/mx]", p)
	}
}

func TestPayloadRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"truncated key varint":  {0x80},
		"field number 0":        {0x02, 0x00},
		"overlong varint":       {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
		"length beyond the end": {0x0a, 0x05, 1, 2},
		"identity_key varint":   {0x08, 0x01},
		"extensions repeated":   {0x22, 0x00, 0x22, 0x00},
		"muxers as varint":      {0x22, 0x02, 0x10, 0x01},
		"empty muxer name":      {0x22, 0x02, 0x12, 0x00},
		"muxer not UTF-8":       {0x22, 0x03, 0x12, 0x01, 0xff},
		"end group":             {0x0c},
		"truncated fixed32":     {0x2d, 1, 2},
	} {
		if _, err := unmarshalPayload(b); !errors.Is(err, security.ErrProtocol) {
			t.Errorf("%s: unmarshal(%x) error = %v, want ErrProtocol", name, b, err)
		}
	}
}

// FuzzPayload checks the decoder's invariants: it never panics, every
// failure is ErrProtocol, every success respects the bounds and re-encodes
// to bytes that decode to the same payload.
func FuzzPayload(f *testing.F) {
	f.Add((&payload{identityKey: []byte{1}, identitySig: []byte{2}, muxers: []string{"/yamux/1.0.0"}}).marshal(nil))
	f.Add([]byte{0x22, 0x08, 0x1a, 0x01, 0x00, 0x12, 0x03, '/', 'm', 'x'})
	f.Add(tooManyMuxers())
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := unmarshalPayload(b)
		if err != nil {
			if !errors.Is(err, security.ErrProtocol) {
				t.Fatalf("error %v is not ErrProtocol", err)
			}
			return
		}
		if len(p.muxers) > security.MaxMuxers || len(p.certhashes) > maxCerthashes {
			t.Fatalf("decoded %d muxers, %d certhashes: beyond the limits", len(p.muxers), len(p.certhashes))
		}
		for _, m := range p.muxers {
			if len(m) == 0 || len(m) > security.MaxMuxerNameLen {
				t.Fatalf("muxer name of %d bytes accepted", len(m))
			}
		}
		again, err := unmarshalPayload(p.marshal(nil))
		if err != nil {
			t.Fatalf("re-encoding of an accepted payload does not decode: %v", err)
		}
		if !bytes.Equal(again.identityKey, p.identityKey) || !bytes.Equal(again.identitySig, p.identitySig) || !slices.Equal(again.muxers, p.muxers) {
			t.Fatalf("re-encoding changed the payload: %+v then %+v", p, again)
		}
	})
}
