package noise

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"time"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// ID is the protocol ID of libp2p Noise.
const ID = "/noise"

// DefaultStaticKeyLifetime is how long a static Noise key is reused when
// Config.StaticKeyLifetime is zero.
const DefaultStaticKeyLifetime = time.Hour

// Config tunes a Transport. The zero value is the default.
type Config struct {
	// StaticKeyLifetime is how long one static Noise key, with the
	// identity signature over it, is reused by successive handshakes
	// before a new one replaces it (the spec allows one static key per
	// node). Zero means DefaultStaticKeyLifetime; a negative value means a
	// new static key, and a new signature, for every handshake.
	StaticKeyLifetime time.Duration

	// Now returns the current time, used for static key rotation. Nil
	// means time.Now.
	Now func() time.Time

	// VerifiedCacheSize is how many successful checks of a peer's
	// identity (its identity key, and its signature over its static Noise
	// key) are remembered, so that a peer reconnecting with the same
	// static key costs no signature verification; see verifiedCache.
	// Zero means DefaultVerifiedCacheSize (1024, about 250 KiB at most
	// with Ed25519 keys); negative disables the cache.
	VerifiedCacheSize int
}

// Transport runs libp2p Noise handshakes for one local identity. It is safe
// for concurrent use.
type Transport struct {
	local    peer.ID
	statics  *staticCache
	verified *verifiedCache
	// ephemerals pre-generates ephemeral keys; nil generates each in
	// its handshake (tests and benchmarks compare both).
	ephemerals *ephemeralPool
	// suite is the Noise cipher suite; only its Cipher and Hash parts are
	// used, each handshake supplying its own DH function.
	cipher noise.CipherFunc
	hash   noise.HashFunc
	// flynnDH switches to flynn/noise's DH25519 (tests and benchmarks
	// compare it with ecdhFunc).
	flynnDH bool
}

var _ security.Transport = (*Transport)(nil)

// New returns a Transport authenticating as identity.
func New(identity peer.PrivKey, cfg Config) (*Transport, error) {
	if identity == nil {
		return nil, fmt.Errorf("%w: nil identity key", security.ErrInvalidParams)
	}
	pub := identity.Public()
	local, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("noise: deriving the local peer ID: %w", err)
	}
	encoded, err := peer.MarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("noise: encoding the identity key: %w", err)
	}
	lifetime := cfg.StaticKeyLifetime
	if lifetime == 0 {
		lifetime = DefaultStaticKeyLifetime
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	cacheSize := cfg.VerifiedCacheSize
	if cacheSize == 0 {
		cacheSize = DefaultVerifiedCacheSize
	}
	return &Transport{
		local: local,
		statics: &staticCache{
			id:          identity,
			identityKey: encoded,
			lifetime:    lifetime,
			rng:         rand.Reader,
			now:         now,
		},
		verified:   newVerifiedCache(cacheSize),
		ephemerals: newEphemeralPool(),
		cipher:     noise.CipherChaChaPoly,
		hash:       noise.HashSHA256,
	}, nil
}

// ID returns "/noise".
func (t *Transport) ID() string { return ID }

// LocalPeer is the peer ID of the transport's identity.
func (t *Transport) LocalPeer() peer.ID { return t.local }

// Handshake runs the XX handshake on raw as p.Role. See security.Transport.
func (t *Transport) Handshake(ctx context.Context, raw net.Conn, p security.Params) (security.Conn, error) {
	if err := p.Validate(); err != nil {
		_ = raw.Close()
		return nil, &security.HandshakeError{Protocol: ID, Step: stepStart, Err: err}
	}
	// A handshake that finishes as ctx ends has succeeded: Stop lifts the
	// deadline ctx set, and ctx no longer matters.
	b := ctxconn.Bind(ctx, raw)
	h := &handshake{ctx: ctx, t: t, raw: raw, p: p}
	err := h.run()
	b.Stop()
	if err != nil {
		_ = raw.Close()
		return nil, err
	}
	return newConn(raw, h), nil
}
