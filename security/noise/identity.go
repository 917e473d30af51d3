package noise

import (
	"crypto/ecdh"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/concordp2p/concord/peer"
)

// staticKeyPrefix is prepended to the Noise static public key before the
// identity key signs it (noise/README.md, "Static Key Authentication").
const staticKeyPrefix = "noise-libp2p-static-key:"

// staticIdentity is a Noise static key pair with the parts of the handshake
// payload that depend only on it: the encoded identity key and its signature
// over the static public key. It is immutable once built and shared by
// concurrent handshakes.
type staticIdentity struct {
	key         *ecdh.PrivateKey
	priv, pub   []byte
	identityKey []byte // PublicKey protobuf of the identity key
	identitySig []byte
	expires     time.Time
}

func newStaticIdentity(id peer.PrivKey, identityKey []byte, rng io.Reader, expires time.Time) (*staticIdentity, error) {
	k, err := x25519.GenerateKey(rng)
	if err != nil {
		return nil, fmt.Errorf("generating the static Noise key: %w", err)
	}
	pub := k.PublicKey().Bytes()
	sig, err := id.Sign(append([]byte(staticKeyPrefix), pub...))
	if err != nil {
		return nil, fmt.Errorf("signing the static Noise key: %w", err)
	}
	return &staticIdentity{key: k, priv: k.Bytes(), pub: pub, identityKey: identityKey, identitySig: sig, expires: expires}, nil
}

// staticCache hands out the node's static identity, building a new one when
// the current one has expired. With a negative lifetime it builds one per
// handshake.
type staticCache struct {
	id          peer.PrivKey
	identityKey []byte
	lifetime    time.Duration
	rng         io.Reader
	now         func() time.Time

	mu  sync.Mutex
	cur *staticIdentity
}

func (c *staticCache) get() (*staticIdentity, error) {
	if c.lifetime < 0 {
		return newStaticIdentity(c.id, c.identityKey, c.rng, time.Time{})
	}
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && now.Before(c.cur.expires) {
		return c.cur, nil
	}
	// Signing under the lock makes concurrent handshakes at rotation wait
	// for one signature instead of computing several.
	s, err := newStaticIdentity(c.id, c.identityKey, c.rng, now.Add(c.lifetime))
	if err != nil {
		return nil, err
	}
	c.cur = s
	return s, nil
}
