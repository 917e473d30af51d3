package peer

import (
	"bytes"
	"testing"

	"github.com/multiformats/go-multibase"
)

// addVectorSeeds adds the spec vectors whose name ends in suffix.
func addVectorSeeds(f *testing.F, suffix string) {
	for name, b := range specVectors(f) {
		if len(name) > len(suffix) && name[len(name)-len(suffix):] == suffix {
			f.Add(b)
		}
	}
}

// FuzzUnmarshalPublicKey: whatever parses re-encodes to the same bytes,
// has a valid peer ID that matches it, and (for inlined keys) can be
// extracted back from that ID.
func FuzzUnmarshalPublicKey(f *testing.F) {
	addVectorSeeds(f, "-public")
	f.Add([]byte{0x08, 0x01, 0x12, 0x00})
	f.Add([]byte{0x08, 0x81, 0x00, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := UnmarshalPublicKey(in)
		if err != nil {
			return
		}
		out, err := MarshalPublicKey(k)
		if err != nil {
			t.Fatalf("MarshalPublicKey of a parsed key: %v", err)
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("round trip: got %x, want %x", out, in)
		}
		id, err := IDFromPublicKey(k)
		if err != nil {
			t.Fatalf("IDFromPublicKey: %v", err)
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("derived ID does not validate: %v", err)
		}
		if !id.MatchesPublicKey(k) {
			t.Fatalf("derived ID does not match its key")
		}
		if len(in) <= 42 {
			back, err := id.ExtractPublicKey()
			if err != nil || !back.Equal(k) {
				t.Fatalf("ExtractPublicKey = %v, %v; want the key", back, err)
			}
		}
	})
}

// FuzzUnmarshalPrivateKey: whatever parses re-encodes to the same bytes
// (the legacy 96-byte Ed25519 form to its 64-byte form), and signs
// messages its public key verifies.
func FuzzUnmarshalPrivateKey(f *testing.F) {
	addVectorSeeds(f, "-private")
	ed := specVectors(f)["ed25519-private"]
	f.Add(append(append([]byte{0x08, 0x01, 0x12, 0x60}, ed[4:]...), ed[4+32:]...)) // legacy form
	f.Fuzz(func(t *testing.T, in []byte) {
		k, err := UnmarshalPrivateKey(in)
		if err != nil {
			return
		}
		out, err := MarshalPrivateKey(k)
		if err != nil {
			t.Fatalf("MarshalPrivateKey of a parsed key: %v", err)
		}
		want := in
		if k.Type() == Ed25519 && len(in) == 4+96 {
			want = append([]byte{0x08, 0x01, 0x12, 0x40}, in[4:4+64]...)
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("round trip: got %x, want %x", out, want)
		}
		k2, err := UnmarshalPrivateKey(out)
		if err != nil || !k2.Equal(k) {
			t.Fatalf("re-parse: got %v, %v; want an Equal key", k2, err)
		}
		pubBytes, err := MarshalPublicKey(k.Public())
		if err != nil {
			t.Fatalf("MarshalPublicKey(Public()): %v", err)
		}
		if _, err := UnmarshalPublicKey(pubBytes); err != nil {
			t.Fatalf("public key of a parsed private key does not parse: %v", err)
		}
		sig, err := k.Sign(in)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if ok, err := k.Public().Verify(in, sig); !ok || err != nil {
			t.Fatalf("Verify(own signature) = %v, %v", ok, err)
		}
	})
}

// FuzzDecodeID: whatever decodes is a valid ID whose String and CID forms
// decode back to it.
func FuzzDecodeID(f *testing.F) {
	for _, s := range []string{specSHA256ID, specSHA256CID, specEd25519ID, "z", "b", "Qm", "1"} {
		f.Add(s)
	}
	ed, err := Decode(specEd25519ID)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncode(f, multibase.Base36, cidBytes(0x01, 0x72, []byte(ed))))
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Decode(s)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("decoded ID does not validate: %v", err)
		}
		for _, form := range []string{id.String(), id.CID()} {
			back, err := Decode(form)
			if err != nil || back != id {
				t.Fatalf("Decode(%s) = %x, %v; want %x", form, []byte(back), err, []byte(id))
			}
		}
	})
}
