package peer

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// specVectors reads testdata/spec-vectors.txt: name -> protobuf bytes.
func specVectors(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/spec-vectors.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("malformed vector line %q", line)
		}
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("vector %s: %v", name, err)
		}
		out[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpecVectors checks the 8 vectors of the peer-ids spec: each private
// and public key parses and re-encodes to the same bytes, the public key
// derived from the private one is the given public key (what the spec asks
// implementations to check), and a signature by the private key verifies
// under the public key.
func TestSpecVectors(t *testing.T) {
	vectors := specVectors(t)
	if got, want := len(vectors), 8; got != want {
		t.Fatalf("got %d vectors, want %d", got, want)
	}
	for _, tc := range []struct {
		name string
		typ  KeyType
		// identity: the peer ID embeds the key (message <= 42 bytes)
		// rather than hashing it.
		identity bool
	}{
		{"ed25519", Ed25519, true},
		{"secp256k1", Secp256k1, true},
		{"ecdsa", ECDSA, false},
		{"rsa", RSA, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			privBytes, pubBytes := vectors[tc.name+"-private"], vectors[tc.name+"-public"]
			priv, err := UnmarshalPrivateKey(privBytes)
			if err != nil {
				t.Fatalf("UnmarshalPrivateKey: %v", err)
			}
			pub, err := UnmarshalPublicKey(pubBytes)
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if priv.Type() != tc.typ || pub.Type() != tc.typ {
				t.Fatalf("got types %v/%v, want %v", priv.Type(), pub.Type(), tc.typ)
			}
			if got, err := MarshalPrivateKey(priv); err != nil || !bytes.Equal(got, privBytes) {
				t.Errorf("MarshalPrivateKey round trip: got %x, %v; want %x", got, err, privBytes)
			}
			if got, err := MarshalPublicKey(pub); err != nil || !bytes.Equal(got, pubBytes) {
				t.Errorf("MarshalPublicKey round trip: got %x, %v; want %x", got, err, pubBytes)
			}
			if got, err := MarshalPublicKey(priv.Public()); err != nil || !bytes.Equal(got, pubBytes) {
				t.Errorf("public key derived from the private key: got %x, %v; want %x", got, err, pubBytes)
			}
			if !priv.Public().Equal(pub) {
				t.Errorf("priv.Public().Equal(pub) = false, want true")
			}
			msg := []byte("concord peer-ids vector " + tc.name)
			sig, err := priv.Sign(msg)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if ok, err := pub.Verify(msg, sig); !ok || err != nil {
				t.Errorf("Verify(own signature) = %v, %v; want true, nil", ok, err)
			}
			id, err := IDFromPublicKey(pub)
			if err != nil {
				t.Fatalf("IDFromPublicKey: %v", err)
			}
			if tc.identity {
				// identity multihash: code 0x00, length, the key message.
				want := append([]byte{0x00, byte(len(pubBytes))}, pubBytes...)
				if !bytes.Equal([]byte(id), want) {
					t.Errorf("ID = %x, want identity multihash %x", []byte(id), want)
				}
			} else {
				// sha2-256 multihash: code 0x12, length 0x20, the digest.
				sum := sha256.Sum256(pubBytes)
				want := append([]byte{0x12, 0x20}, sum[:]...)
				if !bytes.Equal([]byte(id), want) {
					t.Errorf("ID = %x, want sha2-256 multihash %x", []byte(id), want)
				}
			}
			if !id.MatchesPrivateKey(priv) {
				t.Errorf("ID does not match the private key")
			}
		})
	}
}
