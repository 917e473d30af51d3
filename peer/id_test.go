package peer

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
	"github.com/multiformats/go-multibase"
)

// Text examples from the spec's "String representation" section (source in
// testdata/README.md).
const (
	specSHA256ID  = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
	specSHA256CID = "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
	specEd25519ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
)

// cidBytes builds the binary CID <version><codec><multihash> by hand for
// single-byte varints.
func cidBytes(version, codec byte, mh []byte) []byte {
	return append([]byte{version, codec}, mh...)
}

func mustEncode(t testing.TB, base multibase.Encoding, b []byte) string {
	t.Helper()
	s, err := multibase.Encode(base, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSpecIDExamples(t *testing.T) {
	for _, s := range []string{specSHA256ID, specEd25519ID} {
		id, err := Decode(s)
		if err != nil {
			t.Fatalf("Decode(%s): %v", s, err)
		}
		if got := id.String(); got != s {
			t.Errorf("Decode(%s).String() = %s, want the input", s, got)
		}
		if back, err := Decode(id.CID()); err != nil || back != id {
			t.Errorf("Decode(CID()) = %x, %v; want %x", []byte(back), err, []byte(id))
		}
	}

	id, err := Decode(specSHA256CID)
	if err != nil {
		t.Fatalf("Decode(%s): %v", specSHA256CID, err)
	}
	if got := id.CID(); got != specSHA256CID {
		t.Errorf("CID() = %s, want %s (base32 is the canonical CID form)", got, specSHA256CID)
	}
	// The spec's two SHA2-256 examples are the same peer in both forms.
	if got := id.String(); got != specSHA256ID {
		t.Errorf("Decode(%s).String() = %s, want %s", specSHA256CID, got, specSHA256ID)
	}
	if _, err := id.ExtractPublicKey(); !errors.Is(err, ErrNoPublicKey) {
		t.Errorf("ExtractPublicKey(sha256 ID): got %v, want ErrNoPublicKey", err)
	}

	ed, _ := Decode(specEd25519ID)
	pub, err := ed.ExtractPublicKey()
	if err != nil {
		t.Fatalf("ExtractPublicKey(%s): %v", specEd25519ID, err)
	}
	if pub.Type() != Ed25519 || !ed.MatchesPublicKey(pub) {
		t.Errorf("extracted key: type %v, matches %v; want Ed25519, true", pub.Type(), ed.MatchesPublicKey(pub))
	}
}

// TestIDDerivation: a key of each type gets the ID form the spec assigns to
// its encoded length, and every text form decodes back to it.
func TestIDDerivation(t *testing.T) {
	for _, c := range keyCases() {
		t.Run(c.name, func(t *testing.T) {
			priv := mustGenerate(t, c)
			pubBytes, err := MarshalPublicKey(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			id, err := IDFromPrivateKey(priv)
			if err != nil {
				t.Fatal(err)
			}
			var want []byte
			if len(pubBytes) <= 42 {
				want = append([]byte{0x00, byte(len(pubBytes))}, pubBytes...)
			} else {
				sum := sha256.Sum256(pubBytes)
				want = append([]byte{0x12, 0x20}, sum[:]...)
			}
			if !bytes.Equal([]byte(id), want) {
				t.Fatalf("ID = %x, want %x", []byte(id), want)
			}
			if err := id.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if !id.MatchesPrivateKey(priv) || !id.MatchesPublicKey(priv.Public()) {
				t.Errorf("ID does not match its own key")
			}
			other := mustGenerate(t, c)
			if id.MatchesPrivateKey(other) || id.MatchesPublicKey(other.Public()) {
				t.Errorf("ID matches another key")
			}
			if id.MatchesPublicKey(nil) || id.MatchesPrivateKey(nil) {
				t.Errorf("ID matches a nil key")
			}

			cid := cidBytes(0x01, 0x72, want)
			forms := map[string]string{
				"String":           id.String(),
				"CID":              id.CID(),
				"base58btc bare":   base58.Encode(want),
				"CID base32 upper": mustEncode(t, multibase.Base32Upper, cid),
				"CID base36":       mustEncode(t, multibase.Base36, cid),
				"CID base58btc":    mustEncode(t, multibase.Base58BTC, cid),
				"CID base64url":    mustEncode(t, multibase.Base64url, cid),
			}
			if !strings.HasPrefix(forms["CID"], "b") || !strings.HasPrefix(forms["CID base36"], "k") {
				t.Errorf("unexpected multibase prefixes: %s, %s", forms["CID"], forms["CID base36"])
			}
			for name, s := range forms {
				got, err := Decode(s)
				if err != nil || got != id {
					t.Errorf("Decode(%s %s) = %x, %v; want %x", name, s, []byte(got), err, want)
				}
			}

			pub, err := id.ExtractPublicKey()
			if len(pubBytes) <= 42 {
				if err != nil || !pub.Equal(priv.Public()) {
					t.Errorf("ExtractPublicKey = %v, %v; want the key", pub, err)
				}
			} else if !errors.Is(err, ErrNoPublicKey) {
				t.Errorf("ExtractPublicKey: got %v, want ErrNoPublicKey", err)
			}
		})
	}
}

func TestDecodeInvalid(t *testing.T) {
	priv, err := GenerateKey(Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := IDFromPrivateKey(priv)
	mh := []byte(id)
	sum := sha256.Sum256([]byte("x"))
	sha := append([]byte{0x12, 0x20}, sum[:]...)

	for name, s := range map[string]string{
		"empty":                  "",
		"garbage":                "hello world",
		"base58 invalid char":    "Qm0OIl",
		"base58 of nothing":      "1",
		"truncated base58":       id.String()[:20],
		"base58 extra char":      id.String() + "z",
		"unknown multibase":      "?abc",
		"base32 bad char":        "b!!!!",
		"CIDv0 in multibase":     mustEncode(t, multibase.Base32, cidBytes(0x00, 0x72, mh)),
		"CID version 2":          mustEncode(t, multibase.Base32, cidBytes(0x02, 0x72, mh)),
		"CID codec raw":          mustEncode(t, multibase.Base32, cidBytes(0x01, 0x55, mh)),
		"CID codec dag-pb":       mustEncode(t, multibase.Base32, cidBytes(0x01, 0x70, sha)),
		"CID non-minimal ver":    mustEncode(t, multibase.Base32, append([]byte{0x81, 0x00, 0x72}, mh...)),
		"CID non-minimal codec":  mustEncode(t, multibase.Base32, append([]byte{0x01, 0xf2, 0x00}, mh...)),
		"CID without multihash":  mustEncode(t, multibase.Base32, []byte{0x01, 0x72}),
		"CID trailing byte":      mustEncode(t, multibase.Base32, append(cidBytes(0x01, 0x72, mh), 0)),
		"CID truncated":          mustEncode(t, multibase.Base32, cidBytes(0x01, 0x72, mh)[:20]),
		"CID empty":              mustEncode(t, multibase.Base32, nil),
		"base58 sha256 too long": base58.Encode(append(bytes.Clone(sha), 0)),
	} {
		if _, err := Decode(s); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Decode(%s %q): got %v, want ErrInvalidID", name, s, err)
		}
	}
}

func TestIDFromBytesInvalid(t *testing.T) {
	v := specVectors(t)
	ecdsaPub := v["ecdsa-public"] // 95 bytes: must be hashed, not inlined
	for name, b := range map[string][]byte{
		"empty":                     nil,
		"one byte":                  {0x00},
		"sha256 short digest":       append([]byte{0x12, 0x14}, make([]byte, 20)...),
		"sha256 length mismatch":    append([]byte{0x12, 0x20}, make([]byte, 31)...),
		"sha2-512":                  append([]byte{0x13, 0x40}, make([]byte, 64)...),
		"blake2b-256":               append([]byte{0xa0, 0xe4, 0x02, 0x20}, make([]byte, 32)...),
		"identity of non-key":       append([]byte{0x00, 0x05}, "hello"...),
		"identity of empty":         {0x00, 0x00},
		"identity of private key":   append([]byte{0x00, byte(len(v["ed25519-private"]))}, v["ed25519-private"]...),
		"identity of 95-byte key":   append([]byte{0x00, byte(len(ecdsaPub))}, ecdsaPub...),
		"identity trailing":         append(append([]byte{0x00, byte(len(v["ed25519-public"]))}, v["ed25519-public"]...), 0),
		"non-minimal multihash len": append([]byte{0x12, 0xa0, 0x00}, make([]byte, 32)...),
	} {
		if _, err := IDFromBytes(b); !errors.Is(err, ErrInvalidID) {
			t.Errorf("IDFromBytes(%s): got %v, want ErrInvalidID", name, err)
		}
		if err := ID(b).Validate(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Validate(%s): got %v, want ErrInvalidID", name, err)
		}
		if _, err := ID(b).ExtractPublicKey(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("ExtractPublicKey(%s): got %v, want ErrInvalidID", name, err)
		}
	}
}

// TestIDOrder: < on IDs is bytes.Compare on the multihash bytes (the
// order simultaneous-open tie-breaks rely on), not the order of the text.
func TestIDOrder(t *testing.T) {
	var ids []ID
	for i := range 16 {
		typ := Ed25519
		if i%2 == 1 {
			typ = Secp256k1
		}
		k, err := GenerateKey(typ, nil)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := IDFromPrivateKey(k)
		ids = append(ids, id)
	}
	sha, _ := Decode(specSHA256ID)
	ids = append(ids, sha)
	for _, a := range ids {
		for _, b := range ids {
			if got, want := a < b, bytes.Compare([]byte(a), []byte(b)) < 0; got != want {
				t.Fatalf("%s < %s = %v, want %v", a, b, got, want)
			}
		}
	}
	sorted := slices.Sorted(slices.Values(ids))
	if !slices.IsSortedFunc(sorted, func(a, b ID) int { return bytes.Compare([]byte(a), []byte(b)) }) {
		t.Errorf("slices.Sort on IDs does not give bytewise order")
	}
}

func TestShortString(t *testing.T) {
	id, _ := Decode(specSHA256ID)
	if got, want := id.ShortString(), "Qm*Wjhx5N"; got != want {
		t.Errorf("ShortString() = %q, want %q", got, want)
	}
	if got := ID("").ShortString(); got != "" {
		t.Errorf("empty ShortString() = %q, want \"\"", got)
	}
}

func TestIDText(t *testing.T) {
	id, _ := Decode(specEd25519ID)
	b, err := json.Marshal(map[string]ID{"peer": id})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"peer":"`+specEd25519ID+`"}`; got != want {
		t.Errorf("json = %s, want %s", got, want)
	}
	var back map[string]ID
	if err := json.Unmarshal([]byte(`{"peer":"`+id.CID()+`"}`), &back); err != nil || back["peer"] != id {
		t.Errorf("json round trip via CID: got %v, %v; want %s", back, err, id)
	}
	var bad ID
	if err := bad.UnmarshalText([]byte("garbage")); !errors.Is(err, ErrInvalidID) {
		t.Errorf("UnmarshalText(garbage): got %v, want ErrInvalidID", err)
	}
	if err := ID("").Validate(); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Validate(empty): got %v, want ErrInvalidID", err)
	}
}
