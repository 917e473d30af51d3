package tls

import (
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// verifiedCache remembers certificates that passed verifyCertificate, by
// the SHA-256 of their DER bytes, with the identity they authenticate and
// their validity window. Identical bytes verify identically, except for
// the time, which a hit checks again; the handshake's CertificateVerify,
// which crypto/tls checks on every connection, still proves that the peer
// holds the certificate's key. So a hit skips only what cannot change: the
// self-signature and the identity key's signature over the certificate
// key. A peer that reuses its certificate (go-libp2p does for the life of
// its transport, Concord for DefaultReuseCertificateFor) pays for those
// once.
//
// It is bounded: when full, the entry used least recently goes. A
// certificate that fails verification is never stored, so a peer cannot
// fill the cache without signing certificates with identity keys, and
// each entry costs it a full verification on this side first.
type verifiedCache struct {
	c *lru[[sha256.Size]byte, verified]
}

// verified is what a certificate that passed authenticates.
type verified struct {
	key                 peer.PubKey
	id                  peer.ID
	notBefore, notAfter time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{c: newLRU[[sha256.Size]byte, verified](max)}
}

// verify is verifyChain followed by the peer ID derivation, answered from
// the cache when the certificate passed before and is valid at now. A nil
// cache verifies every time.
func (c *verifiedCache) verify(rawCerts [][]byte, now time.Time) (peer.PubKey, peer.ID, error) {
	if len(rawCerts) != 1 {
		return nil, "", fmt.Errorf("%w: %d certificates, want exactly 1", ErrBadCertificate, len(rawCerts))
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	v, err := c.verifyCerts([]*x509.Certificate{cert}, now)
	return v.key, v.id, err
}

// verifyCerts is verify on the chain crypto/tls has already parsed.
func (c *verifiedCache) verifyCerts(certs []*x509.Certificate, now time.Time) (verified, error) {
	if len(certs) != 1 {
		return verified{}, fmt.Errorf("%w: %d certificates, want exactly 1", ErrBadCertificate, len(certs))
	}
	cert := certs[0]
	var sum [sha256.Size]byte
	if c != nil {
		sum = sha256.Sum256(cert.Raw)
		if v, ok := c.c.get(sum); ok {
			if now.Before(v.notBefore) || now.After(v.notAfter) {
				return verified{}, fmt.Errorf("%w: valid from %v to %v, not at %v", ErrBadCertificate, v.notBefore, v.notAfter, now)
			}
			return v, nil
		}
	}
	key, err := verifyCertificate(cert, now)
	if err != nil {
		return verified{}, err
	}
	id, err := peer.IDFromPublicKey(key)
	if err != nil {
		return verified{}, fmt.Errorf("%w: %w", security.ErrIdentityKey, err)
	}
	v := verified{key: key, id: id, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
	if c != nil {
		c.c.put(sum, v)
	}
	return v, nil
}

// len is the number of certificates remembered.
func (c *verifiedCache) len() int { return c.c.len() }
