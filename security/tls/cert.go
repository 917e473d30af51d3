package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// ErrBadCertificate: the peer's certificate chain breaks the libp2p TLS
// spec (not exactly one certificate, not valid now, a bad self-signature,
// no libp2p extension, an unknown critical extension). Failures of the
// extension's contents wrap security.ErrIdentityKey or
// security.ErrInvalidSignature instead.
var ErrBadCertificate = errors.New("security/tls: peer certificate refused")

const (
	// notBeforeSkew backdates certificates so that a peer whose clock is
	// somewhat behind still accepts them.
	notBeforeSkew = time.Hour
	// certValidity is long on purpose: the certificate key is ephemeral
	// (per connection, or per node for a bounded time), so its expiry
	// protects nothing, and a peer with a wrong clock must not refuse it.
	certValidity = 100 * 365 * 24 * time.Hour
)

// newCertificate makes a fresh P-256 key and a self-signed certificate for
// it carrying the libp2p extension signed by id.
func newCertificate(id peer.PrivKey, encodedIdentity []byte, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating the certificate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	sig, err := id.Sign(append([]byte(certificatePrefix), spki...))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing the certificate key: %w", err)
	}
	ext, err := marshalSignedKey(encodedIdentity, sig)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serial,
		NotBefore:          now.Add(-notBeforeSkew),
		NotAfter:           now.Add(certValidity),
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		// The spec allows the extension to be critical; it is not, as in
		// the spec's test vectors and go-libp2p.
		ExtraExtensions: []pkix.Extension{{Id: extensionOID, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("creating the certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// verifyChain checks a peer's certificate chain per the libp2p TLS spec and
// returns the identity key it authenticates.
func verifyChain(rawCerts [][]byte, now time.Time) (peer.PubKey, error) {
	if len(rawCerts) != 1 {
		return nil, fmt.Errorf("%w: %d certificates, want exactly 1", ErrBadCertificate, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return verifyCertificate(cert, now)
}

func verifyCertificate(cert *x509.Certificate, now time.Time) (peer.PubKey, error) {
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: valid from %v to %v, not at %v", ErrBadCertificate, cert.NotBefore, cert.NotAfter, now)
	}
	// Self-signed: checked directly, since CheckSignatureFrom would demand
	// a CA certificate. Signatures with MD5 or SHA-1 are refused here.
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return nil, fmt.Errorf("%w: self-signature: %w", ErrBadCertificate, err)
	}
	for _, oid := range cert.UnhandledCriticalExtensions {
		if !oid.Equal(extensionOID) {
			return nil, fmt.Errorf("%w: unknown critical extension %v", ErrBadCertificate, oid)
		}
	}
	var value []byte
	found := false
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(extensionOID) {
			if found {
				return nil, fmt.Errorf("%w: libp2p extension repeated", ErrBadCertificate)
			}
			value, found = ext.Value, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no libp2p public key extension", ErrBadCertificate)
	}
	return verifyExtension(value, cert.RawSubjectPublicKeyInfo)
}

// verifyExtension decodes the extension value and checks its signature over
// the certificate's SubjectPublicKeyInfo.
func verifyExtension(value, spki []byte) (peer.PubKey, error) {
	sk, err := unmarshalSignedKey(value)
	if err != nil {
		return nil, err
	}
	key, err := peer.UnmarshalPublicKey(sk.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", security.ErrIdentityKey, err)
	}
	ok, err := key.Verify(append([]byte(certificatePrefix), spki...), sk.Signature)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", security.ErrInvalidSignature, err)
	}
	if !ok {
		return nil, security.ErrInvalidSignature
	}
	return key, nil
}

// certSource hands out this node's certificate: a new one per call, or one
// reused until it is older than reuse.
type certSource struct {
	id       peer.PrivKey
	identity []byte
	reuse    time.Duration
	now      func() time.Time

	mu      sync.Mutex
	cur     tls.Certificate
	expires time.Time
}

func (s *certSource) get() (tls.Certificate, error) {
	now := s.now()
	if s.reuse <= 0 {
		return newCertificate(s.id, s.identity, now)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur.Certificate != nil && now.Before(s.expires) {
		return s.cur, nil
	}
	c, err := newCertificate(s.id, s.identity, now)
	if err != nil {
		return tls.Certificate{}, err
	}
	s.cur, s.expires = c, now.Add(s.reuse)
	return c, nil
}
