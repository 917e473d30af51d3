package noise

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/concordp2p/concord/peer"
)

// DefaultVerifiedCacheSize is how many successful identity checks a
// Transport remembers when Config.VerifiedCacheSize is zero.
const DefaultVerifiedCacheSize = 1024

// verifiedKey identifies one identity check: a SHA-256 over the encoded
// identity key, the signature and the Noise static key it signs, each
// length-prefixed.
type verifiedKey [sha256.Size]byte

func newVerifiedKey(identityKey, sig, static []byte) verifiedKey {
	h := sha256.New()
	var n [4]byte
	for _, b := range [][]byte{identityKey, sig, static} {
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	var k verifiedKey
	h.Sum(k[:0])
	return k
}

// verified is the outcome of a successful check: the parsed identity key
// and its peer ID.
type verified struct {
	key peer.PubKey
	id  peer.ID
}

// verifiedCache remembers successful identity checks, so that a peer that
// connects again with the same static key (Concord reuses its static key
// for an hour, DefaultStaticKeyLifetime) costs no key parsing and no
// signature verification. This is sound because the check is a pure
// function of the three inputs the cache key covers: the same identity key,
// signature and static key always verify the same way. Only successes are
// stored. A hit does not spare the rest of the handshake, which proves
// that the peer holds the static private key.
//
// It keeps at most max entries in two generations: when the current one
// is full it becomes the old one and the previous old one is dropped; a hit
// in the old generation moves the entry to the current one. Safe for
// concurrent use.
type verifiedCache struct {
	mu       sync.Mutex
	half     int // entries per generation; 0 disables the cache
	cur, old map[verifiedKey]verified
}

func newVerifiedCache(size int) *verifiedCache {
	if size <= 1 {
		return &verifiedCache{}
	}
	return &verifiedCache{half: size / 2}
}

func (c *verifiedCache) get(k verifiedKey) (verified, bool) {
	if c.half == 0 {
		return verified{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		delete(c.old, k)
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *verifiedCache) put(k verifiedKey, v verified) {
	if c.half == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *verifiedCache) putLocked(k verifiedKey, v verified) {
	if len(c.cur) >= c.half {
		c.old, c.cur = c.cur, nil
	}
	if c.cur == nil {
		c.cur = make(map[verifiedKey]verified, min(c.half, 64))
	}
	c.cur[k] = v
}

// len is the number of entries held (tests).
func (c *verifiedCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
