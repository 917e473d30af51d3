package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/concordp2p/concord/peer"
)

// Spec constants (spec/tls.md).
const (
	tlsID        = "/tls/1.0.0"
	tlsALPN      = "libp2p"
	tlsSigPrefix = "libp2p-tls-handshake:"
)

// tlsExtensionOID is the libp2p Public Key Extension (tls 2.4).
var tlsExtensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// signedKey is the extension's value (tls 2.5).
type signedKey struct {
	PubKey    []byte
	Signature []byte
}

// Certificate mutations a case may ask for.
const (
	mutateNoExtension    = "no-extension"            // the libp2p extension left out
	mutateBadExtSig      = "bad-extension-signature" // signature over another key's SubjectPublicKeyInfo
	mutateExpired        = "expired"                 // NotAfter an hour ago
	mutateUnknownCritExt = "unknown-critical-extension"
)

// makeCertificate builds the adversary's self-signed certificate for
// identity, as tls 2.1–2.6 describe, with mutate applied.
func makeCertificate(identity peer.PrivKey, mutate string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	signed := spki
	if mutate == mutateBadExtSig {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return tls.Certificate{}, err
		}
		if signed, err = x509.MarshalPKIXPublicKey(&other.PublicKey); err != nil {
			return tls.Certificate{}, err
		}
	}
	sig, err := identity.Sign(append([]byte(tlsSigPrefix), signed...))
	if err != nil {
		return tls.Certificate{}, err
	}
	pub, err := peer.MarshalPublicKey(identity.Public())
	if err != nil {
		return tls.Certificate{}, err
	}
	value, err := asn1.Marshal(signedKey{PubKey: pub, Signature: sig})
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := x509.Certificate{SerialNumber: serial, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour)}
	if mutate == mutateExpired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	}
	if mutate != mutateNoExtension {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: tlsExtensionOID, Value: value})
	}
	if mutate == mutateUnknownCritExt {
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 99, 1}, Critical: true, Value: []byte{0x05, 0x00}})
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// peerFromCertificate checks a target's certificate chain as tls 2.1–2.6
// require and returns the peer ID it authenticates.
func peerFromCertificate(rawCerts [][]byte, now time.Time) (peer.ID, error) {
	if len(rawCerts) != 1 {
		return "", fmt.Errorf("%d certificates, want exactly 1", len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return "", err
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return "", errors.New("certificate not valid now")
	}
	// CheckSignatureFrom would also require CA constraints, which the spec
	// does not ask of a self-signed libp2p certificate.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return "", fmt.Errorf("self-signature: %w", err)
	}
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(tlsExtensionOID) {
			continue
		}
		var sk signedKey
		if rest, err := asn1.Unmarshal(ext.Value, &sk); err != nil || len(rest) != 0 {
			return "", fmt.Errorf("malformed SignedKey (err %v)", err)
		}
		pub, err := peer.UnmarshalPublicKey(sk.PubKey)
		if err != nil {
			return "", err
		}
		ok, err := pub.Verify(append([]byte(tlsSigPrefix), cert.RawSubjectPublicKeyInfo...), sk.Signature)
		if err != nil || !ok {
			return "", fmt.Errorf("extension signature does not verify (err %v)", err)
		}
		return peer.IDFromPublicKey(pub)
	}
	return "", errors.New("no libp2p public key extension")
}
