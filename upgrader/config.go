package upgrader

import (
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"slices"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
	"github.com/concordp2p/concord/simopen"
)

// Defaults for the zero values of Config.
const (
	DefaultHandshakeTimeout            = 10 * time.Second
	DefaultMaxInboundUpgrades          = 64
	DefaultMaxInboundUpgradesPerIP     = 16
	DefaultMaxInboundUpgradesPerSubnet = 32
	DefaultFirstByteTimeout            = time.Second
	DefaultMaxInboundProbation         = 32
	DefaultMaxInboundProbationPerIP    = 4
	DefaultAcceptBacklog               = 64
)

// ErrInvalidConfig is wrapped by New's errors.
var ErrInvalidConfig = errors.New("upgrader: invalid config")

// Config configures an Upgrader. Zero values mean the documented defaults.
// New copies it; changing it afterwards has no effect.
type Config struct {
	// Identity is the local private key. Required.
	Identity peer.PrivKey

	// Simopen configures the first stage. Only its limits (MaxTokenLen)
	// are the caller's: Protocols, LocalPeer, RemotePeer and Rand are
	// filled per connection by the upgrader and must be left zero.
	Simopen simopen.Config

	// Security chooses and configures the security protocols.
	Security SecurityConfig

	// Muxer chooses and configures the stream multiplexers.
	Muxer MuxerConfig

	// HandshakeTimeout bounds the whole upgrade, on both sides.
	// If zero, DefaultHandshakeTimeout (10 s).
	HandshakeTimeout time.Duration

	// StageTimeouts bound single stages within the whole upgrade. A zero
	// field means the stage is bounded by HandshakeTimeout alone.
	StageTimeouts StageTimeouts

	// MaxInboundUpgrades bounds the inbound upgrades a Listener runs at
	// once. If zero, DefaultMaxInboundUpgrades (64).
	MaxInboundUpgrades int
	// MaxInboundUpgradesPerIP bounds them per source IP address.
	// If zero, DefaultMaxInboundUpgradesPerIP (16).
	MaxInboundUpgradesPerIP int
	// MaxInboundUpgradesPerSubnet bounds them per source subnet: /24 for
	// IPv4, /64 for IPv6. If zero, DefaultMaxInboundUpgradesPerSubnet (32).
	MaxInboundUpgradesPerSubnet int
	// FirstByteTimeout bounds the wait for an inbound connection's first
	// byte (the dialer speaks first). If zero, DefaultFirstByteTimeout
	// (1 s); negative: none beyond the stage and handshake timeouts.
	FirstByteTimeout time.Duration
	// MaxInboundProbation bounds the connections that found a limit full
	// and wait for their first bytes to claim a place (see Listener). If
	// zero, DefaultMaxInboundProbation (32).
	MaxInboundProbation int
	// MaxInboundProbationPerIP bounds them per source IP address. If
	// zero, DefaultMaxInboundProbationPerIP (4).
	MaxInboundProbationPerIP int
	// AcceptBacklog bounds the upgraded connections a Listener holds that
	// Accept has not returned yet. If zero, DefaultAcceptBacklog (64).
	AcceptBacklog int

	// Gater, if not nil, may refuse connections at three points.
	Gater Gater

	// Observer, if not nil, receives every Event. It is called
	// synchronously from the goroutine running the upgrade and must not
	// block.
	Observer func(Event)

	// Rand is the source of the simopen election numbers. Default
	// crypto/rand. Tests set it to make elections reproducible.
	Rand io.Reader
}

// SecurityConfig chooses the security protocols and configures each.
type SecurityConfig struct {
	// Protocols lists the security protocols to offer, most preferred
	// first; they are proposed in this order: noise.ID ("/noise") and/or
	// tls.ID ("/tls/1.0.0"). Default: Noise, then TLS.
	Protocols []string
	// Noise and TLS configure the transports built from Config.Identity;
	// zero values mean their packages' defaults.
	Noise noise.Config
	TLS   tls.Config
	// Transports, if not nil, are used instead of building Protocols:
	// transports of one's own, or fakes in tests. Protocols, Noise and
	// TLS must then be left zero.
	Transports []security.Transport
}

// MuxerConfig chooses the stream multiplexers and configures yamux.
type MuxerConfig struct {
	// Yamux configures the yamux muxer; zero values mean its defaults.
	Yamux yamux.Config
	// Muxers, if not nil, are used instead of yamux with Yamux, most
	// preferred first. Yamux must then be left zero.
	Muxers []muxer.Muxer
}

// StageTimeouts bound single stages of an upgrade.
type StageTimeouts struct {
	Simopen  time.Duration
	Security time.Duration
	Muxer    time.Duration
}

// Gater lets its owner refuse connections. A non-nil error refuses the
// connection, which is closed; the error is reported wrapped in ErrGated.
type Gater interface {
	// InterceptAccept runs when a Listener accepts a raw connection,
	// before any byte is read.
	InterceptAccept(remote net.Addr) error
	// InterceptSecured runs after the security handshake has
	// authenticated the remote peer.
	InterceptSecured(dir network.Direction, remote peer.ID, addr net.Addr) error
	// InterceptUpgraded runs when the connection is complete, before it
	// is returned.
	InterceptUpgraded(c *Conn) error
}

// RawConnGater is an optional extension of Gater. When the Gater also
// implements it, the upgrader calls InterceptSecuredRaw instead of
// InterceptSecured, with the raw connection being upgraded: the net.Conn
// given to Upgrade, or the one the Listener's RawListener returned. A gater
// that wraps raw connections (with a resource account of its own, say)
// finds its wrapper there. raw is for identification only: reading or
// writing it corrupts the upgrade.
type RawConnGater interface {
	InterceptSecuredRaw(raw net.Conn, dir network.Direction, remote peer.ID) error
}

// populate returns a copy of cfg with every default filled in.
func (cfg Config) populate() (Config, error) {
	if cfg.Identity == nil {
		return cfg, fmt.Errorf("%w: Identity is required", ErrInvalidConfig)
	}
	if sc := cfg.Simopen; sc.Protocols != nil || sc.LocalPeer != "" || sc.RemotePeer != "" || sc.Rand != nil {
		return cfg, fmt.Errorf("%w: Simopen.Protocols, LocalPeer, RemotePeer and Rand are set by the upgrader; leave them zero", ErrInvalidConfig)
	}
	secs, err := cfg.Security.build(cfg.Identity)
	if err != nil {
		return cfg, err
	}
	cfg.Security = SecurityConfig{Transports: secs}
	probe := cfg.Simopen
	for _, t := range secs {
		probe.Protocols = append(probe.Protocols, t.ID())
	}
	if err := probe.Validate(); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	muxers, err := cfg.Muxer.build()
	if err != nil {
		return cfg, err
	}
	cfg.Muxer = MuxerConfig{Muxers: muxers}
	seen := map[string]bool{}
	for _, s := range cfg.Security.Transports {
		if s == nil || s.ID() == "" || seen[s.ID()] {
			return cfg, fmt.Errorf("%w: security transports must be non-nil with distinct IDs", ErrInvalidConfig)
		}
		seen[s.ID()] = true
	}
	for _, m := range cfg.Muxer.Muxers {
		if m == nil || m.ID() == "" || seen[m.ID()] {
			return cfg, fmt.Errorf("%w: muxers must be non-nil with distinct IDs", ErrInvalidConfig)
		}
		seen[m.ID()] = true
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxInboundUpgrades == 0 {
		cfg.MaxInboundUpgrades = DefaultMaxInboundUpgrades
	}
	if cfg.MaxInboundUpgradesPerIP == 0 {
		cfg.MaxInboundUpgradesPerIP = DefaultMaxInboundUpgradesPerIP
	}
	if cfg.MaxInboundUpgradesPerSubnet == 0 {
		cfg.MaxInboundUpgradesPerSubnet = DefaultMaxInboundUpgradesPerSubnet
	}
	if cfg.MaxInboundProbation == 0 {
		cfg.MaxInboundProbation = DefaultMaxInboundProbation
	}
	if cfg.MaxInboundProbationPerIP == 0 {
		cfg.MaxInboundProbationPerIP = DefaultMaxInboundProbationPerIP
	}
	if cfg.FirstByteTimeout == 0 {
		cfg.FirstByteTimeout = DefaultFirstByteTimeout
	}
	if cfg.AcceptBacklog == 0 {
		cfg.AcceptBacklog = DefaultAcceptBacklog
	}
	if cfg.HandshakeTimeout < 0 || cfg.StageTimeouts.Simopen < 0 || cfg.StageTimeouts.Security < 0 || cfg.StageTimeouts.Muxer < 0 {
		return cfg, fmt.Errorf("%w: timeouts must not be negative", ErrInvalidConfig)
	}
	if cfg.MaxInboundUpgrades < 0 || cfg.MaxInboundUpgradesPerIP < 0 || cfg.MaxInboundUpgradesPerSubnet < 0 || cfg.AcceptBacklog < 0 ||
		cfg.MaxInboundProbation < 0 || cfg.MaxInboundProbationPerIP < 0 {
		return cfg, fmt.Errorf("%w: limits must not be negative", ErrInvalidConfig)
	}
	return cfg, nil
}

// build returns the transports sc describes, built for identity k.
func (sc SecurityConfig) build(k peer.PrivKey) ([]security.Transport, error) {
	if sc.Transports != nil {
		if sc.Protocols != nil || !isZero(sc.Noise) || !isZero(sc.TLS) {
			return nil, fmt.Errorf("%w: Security.Transports replaces Protocols, Noise and TLS; leave them zero", ErrInvalidConfig)
		}
		if len(sc.Transports) == 0 {
			return nil, fmt.Errorf("%w: Security.Transports is empty", ErrInvalidConfig)
		}
		return slices.Clone(sc.Transports), nil
	}
	ids := sc.Protocols
	if ids == nil {
		ids = []string{noise.ID, tls.ID}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: Security.Protocols is empty", ErrInvalidConfig)
	}
	out := make([]security.Transport, 0, len(ids))
	for _, id := range ids {
		var (
			t   security.Transport
			err error
		)
		switch id {
		case noise.ID:
			t, err = noise.New(k, sc.Noise)
		case tls.ID:
			t, err = tls.New(k, sc.TLS)
		default:
			return nil, fmt.Errorf("%w: unknown security protocol %q (want %q or %q)", ErrInvalidConfig, id, noise.ID, tls.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidConfig, id, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// build returns the muxers mc describes.
func (mc MuxerConfig) build() ([]muxer.Muxer, error) {
	if mc.Muxers != nil {
		if !isZero(mc.Yamux) {
			return nil, fmt.Errorf("%w: Muxer.Muxers replaces Yamux; leave it zero", ErrInvalidConfig)
		}
		if len(mc.Muxers) == 0 {
			return nil, fmt.Errorf("%w: Muxer.Muxers is empty", ErrInvalidConfig)
		}
		return slices.Clone(mc.Muxers), nil
	}
	y, err := yamux.New(mc.Yamux)
	if err != nil {
		return nil, fmt.Errorf("%w: yamux: %w", ErrInvalidConfig, err)
	}
	return []muxer.Muxer{y}, nil
}

// isZero reports whether v, a configuration struct, is its zero value.
func isZero(v any) bool { return reflect.ValueOf(v).IsZero() }
