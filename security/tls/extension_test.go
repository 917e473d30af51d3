package tls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// TestExtensionWireFormat pins SignedKey as a SEQUENCE of two OCTET
// STRINGs (what the spec's vectors carry).
func TestExtensionWireFormat(t *testing.T) {
	b, err := marshalSignedKey([]byte{0xaa}, []byte{0xbb, 0xcc})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte{0x30, 0x07, 0x04, 0x01, 0xaa, 0x04, 0x02, 0xbb, 0xcc}
	if !bytes.Equal(b, want) {
		t.Fatalf("marshal = %x, want %x", b, want)
	}
	// A BIT STRING, as the spec's ASN.1 text says, is refused.
	if _, err := unmarshalSignedKey([]byte{0x30, 0x08, 0x03, 0x02, 0x00, 0xaa, 0x04, 0x02, 0xbb, 0xcc}); !errors.Is(err, ErrMalformedExtension) {
		t.Errorf("BIT STRING publicKey: error %v, want ErrMalformedExtension", err)
	}
}

// FuzzExtension checks the extension decoder and verifier: no panic;
// failures are ErrMalformedExtension, ErrIdentityKey or
// ErrInvalidSignature; a decoded value re-encodes to the same bytes (DER
// has one encoding); an accepted extension really carries a key whose
// signature verifies.
func FuzzExtension(f *testing.F) {
	id := sectest.Key(f, peer.Ed25519, 0)
	cert := certSpec{identity: id}.make(f)
	parsed, _ := x509.ParseCertificate(cert.Certificate[0])
	var value []byte
	for _, e := range parsed.Extensions {
		if e.Id.Equal(extensionOID) {
			value = e.Value
		}
	}
	spki := parsed.RawSubjectPublicKeyInfo
	f.Add(value)
	f.Add([]byte{0x30, 0x07, 0x04, 0x01, 0xaa, 0x04, 0x02, 0xbb, 0xcc})
	f.Add([]byte{0x30, 0x80, 0x04, 0x00, 0x04, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		sk, err := unmarshalSignedKey(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedExtension) {
				t.Fatalf("decode error %v is not ErrMalformedExtension", err)
			}
			return
		}
		again, err := marshalSignedKey(sk.PublicKey, sk.Signature)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, which re-encodes to %x (%v)", b, again, err)
		}
		key, err := verifyExtension(b, spki)
		if err != nil {
			if !errors.Is(err, security.ErrIdentityKey) && !errors.Is(err, security.ErrInvalidSignature) {
				t.Fatalf("verify error %v has no sentinel", err)
			}
			return
		}
		ok, err := key.Verify(append([]byte(certificatePrefix), spki...), sk.Signature)
		if err != nil || !ok {
			t.Fatalf("accepted an extension whose signature does not verify")
		}
	})
}

func TestSelectALPN(t *testing.T) {
	for _, tc := range []struct {
		client, muxers, want []string
	}{
		{[]string{"/yamux/1.0.0", "/mplex/6.7.0", "libp2p"}, []string{"/mplex/6.7.0", "/yamux/1.0.0"}, []string{"/yamux/1.0.0"}},
		{[]string{"/yamux/1.0.0", "libp2p"}, []string{"/mplex/6.7.0"}, []string{"libp2p"}},
		{[]string{"libp2p"}, []string{"/yamux/1.0.0"}, []string{"libp2p"}},
		{[]string{"h2"}, []string{"/yamux/1.0.0"}, []string{"/yamux/1.0.0", "libp2p"}},
		{nil, nil, []string{"libp2p"}},
	} {
		if got := selectALPN(tc.client, tc.muxers); !slices.Equal(got, tc.want) {
			t.Errorf("selectALPN(%q, %q) = %q, want %q", tc.client, tc.muxers, got, tc.want)
		}
	}
}

func TestCertificateReuse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	id := sectest.Key(t, peer.Ed25519, 0)
	fresh := newTransport(t, id, Config{ReuseCertificateFor: -1, Now: clock})
	a, _ := fresh.certs.get()
	b, _ := fresh.certs.get()
	if bytes.Equal(a.Certificate[0], b.Certificate[0]) {
		t.Errorf("ReuseCertificateFor < 0 reused the certificate, want one per connection")
	}
	def := newTransport(t, id, Config{Now: clock})
	a, _ = def.certs.get()
	now = now.Add(DefaultReuseCertificateFor - time.Second)
	b, _ = def.certs.get()
	if !bytes.Equal(a.Certificate[0], b.Certificate[0]) {
		t.Errorf("default config replaced the certificate within DefaultReuseCertificateFor")
	}
	reuse := newTransport(t, id, Config{ReuseCertificateFor: time.Minute, Now: clock})
	a, _ = reuse.certs.get()
	now = now.Add(59 * time.Second)
	b, _ = reuse.certs.get()
	if !bytes.Equal(a.Certificate[0], b.Certificate[0]) {
		t.Errorf("certificate replaced within ReuseCertificateFor")
	}
	now = now.Add(time.Second)
	c, _ := reuse.certs.get()
	if bytes.Equal(a.Certificate[0], c.Certificate[0]) {
		t.Errorf("certificate not replaced after ReuseCertificateFor")
	}
	// Our own certificates pass our own verification.
	key, err := verifyChain(c.Certificate, now)
	if err != nil || !key.Equal(id.Public()) {
		t.Errorf("verifying our certificate: %v", err)
	}
}

// TestTLS13Only: a peer that offers at most TLS 1.2 is refused.
func TestTLS13Only(t *testing.T) {
	ours, theirs := sectest.PipePair(t)
	defer theirs.Close()
	done := make(chan error, 1)
	go func() {
		c := tls.Client(theirs, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: []string{alpnLibp2p}})
		done <- c.Handshake()
		theirs.Close()
	}()
	_, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(t.Context(), ours, security.Params{Role: 2})
	if err == nil {
		t.Fatal("handshake with a TLS 1.2 client succeeded")
	}
	if cerr := <-done; cerr == nil {
		t.Errorf("the TLS 1.2 client completed its handshake")
	}
}
