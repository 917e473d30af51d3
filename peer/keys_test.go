package peer

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/multiformats/go-varint"
)

// keyCase names one key configuration and how to generate it.
type keyCase struct {
	name string
	typ  KeyType
	gen  func() (PrivKey, error)
}

func keyCases() []keyCase {
	return []keyCase{
		{"Ed25519", Ed25519, func() (PrivKey, error) { return GenerateKey(Ed25519, nil) }},
		{"Secp256k1", Secp256k1, func() (PrivKey, error) { return GenerateKey(Secp256k1, nil) }},
		{"ECDSA-P256", ECDSA, func() (PrivKey, error) { return GenerateKey(ECDSA, nil) }},
		{"ECDSA-P384", ECDSA, func() (PrivKey, error) { return GenerateECDSAKey(elliptic.P384(), nil) }},
		{"ECDSA-P521", ECDSA, func() (PrivKey, error) { return GenerateECDSAKey(elliptic.P521(), nil) }},
		{"RSA-2048", RSA, func() (PrivKey, error) { return GenerateKey(RSA, nil) }},
	}
}

func mustGenerate(t testing.TB, c keyCase) PrivKey {
	t.Helper()
	k, err := c.gen()
	if err != nil {
		t.Fatalf("generating %s key: %v", c.name, err)
	}
	return k
}

// TestKeyRoundTrip: generate, marshal, unmarshal, compare; sign, verify;
// a tampered signature or message, or another key, fails to verify.
func TestKeyRoundTrip(t *testing.T) {
	for _, c := range keyCases() {
		t.Run(c.name, func(t *testing.T) {
			priv := mustGenerate(t, c)
			other := mustGenerate(t, c)
			if got := priv.Type(); got != c.typ {
				t.Fatalf("Type() = %v, want %v", got, c.typ)
			}

			privBytes, err := MarshalPrivateKey(priv)
			if err != nil {
				t.Fatalf("MarshalPrivateKey: %v", err)
			}
			priv2, err := UnmarshalPrivateKey(privBytes)
			if err != nil {
				t.Fatalf("UnmarshalPrivateKey: %v", err)
			}
			if !priv2.Equal(priv) || !priv.Equal(priv2) {
				t.Errorf("unmarshalled private key not Equal to the original")
			}
			if again, _ := MarshalPrivateKey(priv2); !bytes.Equal(again, privBytes) {
				t.Errorf("private key re-marshal: got %x, want %x", again, privBytes)
			}
			if priv.Equal(other) {
				t.Errorf("two generated keys are Equal")
			}

			pub := priv.Public()
			pubBytes, err := MarshalPublicKey(pub)
			if err != nil {
				t.Fatalf("MarshalPublicKey: %v", err)
			}
			pub2, err := UnmarshalPublicKey(pubBytes)
			if err != nil {
				t.Fatalf("UnmarshalPublicKey: %v", err)
			}
			if !pub2.Equal(pub) || !pub2.Equal(priv2.Public()) {
				t.Errorf("unmarshalled public key not Equal to the original")
			}
			if pub.Equal(other.Public()) {
				t.Errorf("public keys of two generated keys are Equal")
			}

			msg := []byte("the quick brown fox")
			sig, err := priv.Sign(msg)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if ok, err := pub2.Verify(msg, sig); !ok || err != nil {
				t.Errorf("Verify(valid) = %v, %v; want true, nil", ok, err)
			}
			bad := bytes.Clone(sig)
			bad[len(bad)/2] ^= 0x01
			if ok, _ := pub2.Verify(msg, bad); ok {
				t.Errorf("Verify(tampered signature) = true, want false")
			}
			if ok, _ := pub2.Verify([]byte("the quick brown fix"), sig); ok {
				t.Errorf("Verify(tampered message) = true, want false")
			}
			if ok, _ := other.Public().Verify(msg, sig); ok {
				t.Errorf("Verify under another key = true, want false")
			}
			for _, garbage := range [][]byte{nil, {}, {0x30}, bytes.Repeat([]byte{0xff}, 600), append(bytes.Clone(sig), 0)} {
				if ok, _ := pub2.Verify(msg, garbage); ok {
					t.Errorf("Verify(garbage %x...) = true, want false", garbage[:min(len(garbage), 8)])
				}
			}
		})
	}
}

// TestKeyEqualAcrossTypes: keys of different types are never Equal.
func TestKeyEqualAcrossTypes(t *testing.T) {
	var privs []PrivKey
	for _, c := range keyCases() {
		if c.name == "RSA-2048" {
			continue // slow to generate, nothing specific to test
		}
		privs = append(privs, mustGenerate(t, c))
	}
	for i, a := range privs {
		for j, b := range privs {
			if got, want := a.Equal(b), i == j; got != want {
				t.Errorf("%v(%d).Equal(%v(%d)) = %v, want %v", a.Type(), i, b.Type(), j, got, want)
			}
			if got, want := a.Public().Equal(b.Public()), i == j; got != want {
				t.Errorf("public %v(%d).Equal(%v(%d)) = %v, want %v", a.Type(), i, b.Type(), j, got, want)
			}
		}
	}
}

// TestGenerateDeterministic: Ed25519 and secp256k1 keys come from the
// reader alone.
func TestGenerateDeterministic(t *testing.T) {
	for _, typ := range []KeyType{Ed25519, Secp256k1} {
		seed := bytes.Repeat([]byte{7}, 64)
		a, err := GenerateKey(typ, bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		b, err := GenerateKey(typ, bytes.NewReader(seed))
		if err != nil {
			t.Fatal(err)
		}
		if !a.Equal(b) {
			t.Errorf("%v: same reader gave different keys", typ)
		}
		if _, err := GenerateKey(typ, bytes.NewReader(nil)); err == nil {
			t.Errorf("%v: GenerateKey with an empty reader succeeded, want an error", typ)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	if _, err := GenerateKey(KeyType(4), nil); !errors.Is(err, ErrUnknownKeyType) {
		t.Errorf("GenerateKey(4): got %v, want ErrUnknownKeyType", err)
	}
	if _, err := GenerateECDSAKey(elliptic.P224(), nil); !errors.Is(err, ErrUnknownKeyType) {
		t.Errorf("GenerateECDSAKey(P-224): got %v, want ErrUnknownKeyType", err)
	}
	for _, n := range []int{1024, 2047, 8193, 16384} {
		_, err := GenerateRSAKey(n, nil)
		var se *RSAKeySizeError
		if !errors.As(err, &se) || se.Bits != n || !errors.Is(err, ErrRSAKeySize) {
			t.Errorf("GenerateRSAKey(%d): got %v, want *RSAKeySizeError{Bits: %d}", n, err, n)
		}
	}
}

func TestKeyTypeString(t *testing.T) {
	for typ, want := range map[KeyType]string{RSA: "RSA", Ed25519: "Ed25519", Secp256k1: "Secp256k1", ECDSA: "ECDSA", 9: "KeyType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("KeyType(%d).String() = %q, want %q", int32(typ), got, want)
		}
	}
}

// msg builds a key message by hand (not with the code under test).
func msg(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestUnmarshalMalformed: every deviation from the canonical encoding is
// refused with the right sentinel.
func TestUnmarshalMalformed(t *testing.T) {
	v := specVectors(t)
	edPub := v["ed25519-public"]   // 08 01 12 20 <32>
	edPriv := v["ed25519-private"] // 08 01 12 40 <64>
	edPubData := edPub[4:]
	cases := []struct {
		name    string
		in      []byte
		private bool
		want    error
	}{
		{"empty", nil, false, ErrMalformedKey},
		{"type only", edPub[:2], false, ErrMalformedKey},
		{"truncated data", edPub[:len(edPub)-1], false, ErrMalformedKey},
		{"truncated length varint", msg([]byte{0x08, 0x01, 0x12, 0x80}), false, ErrMalformedKey},
		{"trailing byte", msg(edPub, []byte{0}), false, ErrMalformedKey},
		{"trailing field", msg(edPub, []byte{0x1a, 0x00}), false, ErrMalformedKey},
		{"unknown field first", msg([]byte{0x1a, 0x00}, edPub), false, ErrMalformedKey},
		{"fields reversed", msg([]byte{0x12, 0x20}, edPubData, []byte{0x08, 0x01}), false, ErrMalformedKey},
		{"type twice", msg([]byte{0x08, 0x01}, edPub), false, ErrMalformedKey},
		{"missing type", msg([]byte{0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"missing data", []byte{0x08, 0x01}, false, ErrMalformedKey},
		{"type as fixed64", msg([]byte{0x09, 1, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"data as varint", []byte{0x08, 0x01, 0x10, 0x20}, false, ErrMalformedKey},
		{"non-minimal type varint", msg([]byte{0x08, 0x81, 0x00, 0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"non-minimal length varint", msg([]byte{0x08, 0x01, 0x12, 0xa0, 0x00}, edPubData), false, ErrMalformedKey},
		{"unknown type 4", msg([]byte{0x08, 0x04, 0x12, 0x20}, edPubData), false, ErrUnknownKeyType},
		{"unknown type 2^32", msg([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x12, 0x20}, edPubData), false, ErrUnknownKeyType},
		{"ed25519 data 31 bytes", msg([]byte{0x08, 0x01, 0x12, 0x1f}, edPubData[:31]), false, ErrMalformedKey},
		{"ed25519 key labelled secp256k1", msg([]byte{0x08, 0x02, 0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"ed25519 key labelled RSA", msg([]byte{0x08, 0x00, 0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"ed25519 key labelled ECDSA", msg([]byte{0x08, 0x03, 0x12, 0x20}, edPubData), false, ErrMalformedKey},
		{"private: truncated", edPriv[:40], true, ErrMalformedKey},
		{"private: trailing", msg(edPriv, []byte{0}), true, ErrMalformedKey},
		{"private: unknown type", msg([]byte{0x08, 0x05}, edPriv[2:]), true, ErrUnknownKeyType},
		{"private: public key bytes", edPub, true, ErrMalformedKey},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.private {
				_, err = UnmarshalPrivateKey(c.in)
			} else {
				_, err = UnmarshalPublicKey(c.in)
			}
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestNonMinimalVarintCause: the varint library's condition is kept in the
// chain.
func TestNonMinimalVarintCause(t *testing.T) {
	v := specVectors(t)
	in := msg([]byte{0x08, 0x81, 0x00, 0x12, 0x20}, v["ed25519-public"][4:])
	_, err := UnmarshalPublicKey(in)
	if !errors.Is(err, ErrMalformedKey) || !errors.Is(err, varint.ErrNotMinimal) {
		t.Errorf("got %v, want ErrMalformedKey wrapping varint.ErrNotMinimal", err)
	}
}

func TestEd25519Private(t *testing.T) {
	v := specVectors(t)
	canon := v["ed25519-private"]
	data := canon[4:]
	seed, pub := data[:32], data[32:]

	// Legacy form: seed || pub || pub is accepted and re-encodes canonically.
	legacy := msg([]byte{0x08, 0x01, 0x12, 0x60}, seed, pub, pub)
	k, err := UnmarshalPrivateKey(legacy)
	if err != nil {
		t.Fatalf("legacy 96-byte key: %v", err)
	}
	if got, _ := MarshalPrivateKey(k); !bytes.Equal(got, canon) {
		t.Errorf("legacy key re-marshal: got %x, want %x", got, canon)
	}

	otherPub := bytes.Clone(pub)
	otherPub[0] ^= 1
	for name, in := range map[string][]byte{
		"legacy with differing copies": msg([]byte{0x08, 0x01, 0x12, 0x60}, seed, pub, otherPub),
		"public half not from seed":    msg([]byte{0x08, 0x01, 0x12, 0x40}, seed, otherPub),
		"seed only":                    msg([]byte{0x08, 0x01, 0x12, 0x20}, seed),
	} {
		if _, err := UnmarshalPrivateKey(in); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: got %v, want ErrMalformedKey", name, err)
		}
	}
}

func TestSecp256k1Malformed(t *testing.T) {
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	uncompressed := k.PubKey().SerializeUncompressed()
	notOnCurve := append([]byte{0x02}, bytes.Repeat([]byte{0xff}, 32)...)
	order := secp256k1.S256().N.FillBytes(make([]byte, 32))
	for name, c := range map[string]struct {
		in      []byte
		private bool
	}{
		"uncompressed public key": {msg([]byte{0x08, 0x02, 0x12, 0x41}, uncompressed), false},
		"x not on the curve":      {msg([]byte{0x08, 0x02, 0x12, 0x21}, notOnCurve), false},
		"bad prefix byte":         {msg([]byte{0x08, 0x02, 0x12, 0x21, 0x05}, uncompressed[1:33]), false},
		"zero private key":        {msg([]byte{0x08, 0x02, 0x12, 0x20}, make([]byte, 32)), true},
		"private key = N":         {msg([]byte{0x08, 0x02, 0x12, 0x20}, order), true},
		"private key 31 bytes":    {msg([]byte{0x08, 0x02, 0x12, 0x1f}, order[1:]), true},
	} {
		var err error
		if c.private {
			_, err = UnmarshalPrivateKey(c.in)
		} else {
			_, err = UnmarshalPublicKey(c.in)
		}
		if !errors.Is(err, ErrMalformedKey) {
			t.Errorf("%s: got %v, want ErrMalformedKey", name, err)
		}
	}
}

func TestECDSAMalformed(t *testing.T) {
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkix224, _ := x509.MarshalPKIXPublicKey(&p224.PublicKey)
	sec1224, _ := x509.MarshalECPrivateKey(p224)
	if _, err := UnmarshalPublicKey(encodeKeyMessage(ECDSA, pkix224)); !errors.Is(err, ErrUnknownKeyType) {
		t.Errorf("P-224 public key: got %v, want ErrUnknownKeyType", err)
	}
	if _, err := UnmarshalPrivateKey(encodeKeyMessage(ECDSA, sec1224)); !errors.Is(err, ErrUnknownKeyType) {
		t.Errorf("P-224 private key: got %v, want ErrUnknownKeyType", err)
	}

	v := specVectors(t)
	pkix := v["ecdsa-public"][4:] // 08 03 12 5b <91>
	if len(pkix) != 0x5b {
		t.Fatalf("vector layout: got %d data bytes, want 91", len(pkix))
	}
	// The same SEQUENCE with a long-form length (0x81 0x59 instead of
	// 0x59) is valid BER but not DER: one key, two encodings.
	longForm := msg([]byte{0x30, 0x81}, pkix[1:])
	if _, err := UnmarshalPublicKey(encodeKeyMessage(ECDSA, longForm)); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("long-form DER length: got %v, want ErrMalformedKey", err)
	}
	rsaPub := v["rsa-public"][4:]
	if _, err := UnmarshalPublicKey(encodeKeyMessage(ECDSA, rsaPub)); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("RSA key labelled ECDSA: got %v, want ErrMalformedKey", err)
	}

	// SEC 1 allows omitting the public key; crypto/x509 parses that, but
	// this package always writes it, so the short form is a second
	// encoding of the same key and is refused.
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	noPub, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
	}{1, k.D.FillBytes(make([]byte, 32)), asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseECPrivateKey(noPub); err != nil {
		t.Fatalf("test input rejected by crypto/x509 itself: %v", err)
	}
	if _, err := UnmarshalPrivateKey(encodeKeyMessage(ECDSA, noPub)); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("SEC 1 key without public key: got %v, want ErrMalformedKey", err)
	}
	if _, err := UnmarshalPrivateKey(encodeKeyMessage(ECDSA, []byte("garbage"))); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("garbage ECDSA private key: got %v, want ErrMalformedKey", err)
	}
}

// fakeRSAPublic builds a PKIX RSA public key whose modulus has the given
// bit length (odd, top bit set, not a real product of primes): enough for
// the size check, which must run before anything looks at the numbers.
func fakeRSAPublic(t testing.TB, bits int) []byte {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.SetBit(n, 0, 1)
	pub, err := x509.MarshalPKIXPublicKey(&rsa.PublicKey{N: n, E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// fakeRSAPrivate builds a PKCS #1 RSAPrivateKey structure with a modulus of
// the given size and meaningless other numbers.
func fakeRSAPrivate(t testing.TB, bits int) []byte {
	t.Helper()
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	n.SetBit(n, 0, 1)
	one := big.NewInt(1)
	der, err := asn1.Marshal(struct {
		Version             int
		N                   *big.Int
		E                   int
		D, P, Q, Dp, Dq, Qi *big.Int
	}{0, n, 65537, one, one, one, one, one, one})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestRSAKeySize: keys outside 2048..8192 bits are refused with
// *RSAKeySizeError carrying the size; the limits themselves are accepted.
func TestRSAKeySize(t *testing.T) {
	for _, bits := range []int{512, 1024, 2047, 8193, 16384} {
		_, err := UnmarshalPublicKey(encodeKeyMessage(RSA, fakeRSAPublic(t, bits)))
		var se *RSAKeySizeError
		if !errors.As(err, &se) || se.Bits != bits || !errors.Is(err, ErrRSAKeySize) {
			t.Errorf("public key of %d bits: got %v, want *RSAKeySizeError{Bits: %d}", bits, err, bits)
		}
		// The fake private key is not a valid key: getting the size error
		// rather than a parse error shows the size is checked first.
		_, err = UnmarshalPrivateKey(encodeKeyMessage(RSA, fakeRSAPrivate(t, bits)))
		if !errors.As(err, &se) || se.Bits != bits {
			t.Errorf("private key of %d bits: got %v, want *RSAKeySizeError{Bits: %d}", bits, err, bits)
		}
	}
	for _, bits := range []int{2048, 8192} {
		if _, err := UnmarshalPublicKey(encodeKeyMessage(RSA, fakeRSAPublic(t, bits))); err != nil {
			t.Errorf("public key of %d bits: got %v, want nil", bits, err)
		}
		// Valid size, invalid numbers: refused by crypto/x509, not by size.
		_, err := UnmarshalPrivateKey(encodeKeyMessage(RSA, fakeRSAPrivate(t, bits)))
		if !errors.Is(err, ErrMalformedKey) || errors.Is(err, ErrRSAKeySize) {
			t.Errorf("invalid private key of %d bits: got %v, want ErrMalformedKey only", bits, err)
		}
	}

	// A real 1024-bit key, as another implementation would send it.
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	pkix, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	var se *RSAKeySizeError
	if _, err := UnmarshalPublicKey(encodeKeyMessage(RSA, pkix)); !errors.As(err, &se) || se.Bits != 1024 {
		t.Errorf("real 1024-bit public key: got %v, want *RSAKeySizeError{Bits: 1024}", err)
	}
	if _, err := UnmarshalPrivateKey(encodeKeyMessage(RSA, x509.MarshalPKCS1PrivateKey(small))); !errors.As(err, &se) || se.Bits != 1024 {
		t.Errorf("real 1024-bit private key: got %v, want *RSAKeySizeError{Bits: 1024}", err)
	}
	if got, want := (&RSAKeySizeError{Bits: 16384}).Error(), "peer: RSA key of 16384 bits refused: accepted sizes are 2048 to 8192 bits"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestRSAMalformed(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":               nil,
		"not DER":             []byte("hello"),
		"SPKI without key":    {0x30, 0x02, 0x30, 0x00},
		"PKCS1 in the public": fakeRSAPrivate(t, 2048),
	} {
		if _, err := UnmarshalPublicKey(encodeKeyMessage(RSA, data)); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("public %s: got %v, want ErrMalformedKey", name, err)
		}
	}
	for name, data := range map[string][]byte{
		"empty":               nil,
		"PKIX in the private": fakeRSAPublic(t, 2048),
	} {
		if _, err := UnmarshalPrivateKey(encodeKeyMessage(RSA, data)); !errors.Is(err, ErrMalformedKey) {
			t.Errorf("private %s: got %v, want ErrMalformedKey", name, err)
		}
	}
}

func TestMarshalNil(t *testing.T) {
	if _, err := MarshalPublicKey(nil); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("MarshalPublicKey(nil): got %v, want ErrMalformedKey", err)
	}
	if _, err := MarshalPrivateKey(nil); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("MarshalPrivateKey(nil): got %v, want ErrMalformedKey", err)
	}
	if _, err := IDFromPrivateKey(nil); !errors.Is(err, ErrMalformedKey) {
		t.Errorf("IDFromPrivateKey(nil): got %v, want ErrMalformedKey", err)
	}
}

func BenchmarkSign(b *testing.B) {
	msg := bytes.Repeat([]byte{'x'}, 256)
	for _, c := range keyCases() {
		b.Run(c.name, func(b *testing.B) {
			k := mustGenerate(b, c)
			for b.Loop() {
				if _, err := k.Sign(msg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	msg := bytes.Repeat([]byte{'x'}, 256)
	for _, c := range keyCases() {
		b.Run(c.name, func(b *testing.B) {
			k := mustGenerate(b, c)
			sig, err := k.Sign(msg)
			if err != nil {
				b.Fatal(err)
			}
			pub := k.Public()
			for b.Loop() {
				if ok, _ := pub.Verify(msg, sig); !ok {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}
