package tls

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/concordp2p/concord/peer"
)

// verifiedCache remembers certificates that passed verifyChain, by the
// SHA-256 of their DER bytes, with the identity they authenticate and
// their validity window. Identical bytes verify identically, except for
// the time, which a hit checks again; the handshake's CertificateVerify,
// which crypto/tls checks on every connection, still proves that the peer
// holds the certificate's key. So a hit skips only what cannot change: the
// parse, the self-signature and the identity key's signature over the
// certificate key. A peer that reuses its certificate (go-libp2p does for
// the life of its transport, Concord for DefaultReuseCertificateFor) pays
// for those once.
//
// It is bounded: when full, the entry used least recently goes. A
// certificate that fails verification is never stored, so a peer cannot
// fill the cache without signing certificates with identity keys, and
// each entry costs it a full verification on this side first.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]*verifiedEntry
	tick    uint64 // advances on every use; entries keep the last
}

type verifiedEntry struct {
	key                 peer.PubKey
	id                  peer.ID
	notBefore, notAfter time.Time
	used                uint64
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[sha256.Size]byte]*verifiedEntry)}
}

// verify is verifyChain followed by the peer ID derivation, answered from
// the cache when the certificate passed before and is valid at now. A nil
// cache verifies every time.
func (c *verifiedCache) verify(rawCerts [][]byte, now time.Time) (peer.PubKey, peer.ID, error) {
	if c == nil || len(rawCerts) != 1 {
		return verifyFully(rawCerts, now)
	}
	sum := sha256.Sum256(rawCerts[0])
	c.mu.Lock()
	if e, ok := c.entries[sum]; ok {
		c.tick++
		e.used = c.tick
		key, id, nb, na := e.key, e.id, e.notBefore, e.notAfter
		c.mu.Unlock()
		if now.Before(nb) || now.After(na) {
			return nil, "", fmt.Errorf("%w: valid from %v to %v, not at %v", ErrBadCertificate, nb, na, now)
		}
		return key, id, nil
	}
	c.mu.Unlock()
	cert, key, id, err := verifyParsed(rawCerts, now)
	if err != nil {
		return nil, "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.evictLocked()
	}
	c.tick++
	c.entries[sum] = &verifiedEntry{key: key, id: id, notBefore: cert.NotBefore, notAfter: cert.NotAfter, used: c.tick}
	return key, id, nil
}

// evictLocked drops the entry used least recently. A scan is fine: it
// runs only when a new certificate arrives at a full cache, next to a
// full verification that costs far more.
func (c *verifiedCache) evictLocked() {
	var oldest [sha256.Size]byte
	first := true
	var least uint64
	for k, e := range c.entries {
		if first || e.used < least {
			oldest, least, first = k, e.used, false
		}
	}
	delete(c.entries, oldest)
}

// len is the number of certificates remembered.
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func verifyFully(rawCerts [][]byte, now time.Time) (peer.PubKey, peer.ID, error) {
	_, key, id, err := verifyParsed(rawCerts, now)
	return key, id, err
}
