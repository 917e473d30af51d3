package upgrader

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
)

// Defaults for the zero values of Config.
const (
	DefaultHandshakeTimeout        = 10 * time.Second
	DefaultMaxInboundUpgrades      = 64
	DefaultMaxInboundUpgradesPerIP = 16
	DefaultAcceptBacklog           = 64
)

// ErrInvalidConfig is wrapped by New's errors.
var ErrInvalidConfig = errors.New("upgrader: invalid config")

// Config configures an Upgrader. Zero values mean the documented defaults.
// New copies it; changing it afterwards has no effect.
type Config struct {
	// Identity is the local private key. Required.
	Identity peer.PrivKey

	// Security lists the security transports, most preferred first; they
	// are proposed in this order. Default: Noise, then TLS, built from
	// Identity.
	Security []security.Transport

	// Muxers lists the stream multiplexers, most preferred first.
	// Default: yamux with Concord's defaults.
	Muxers []muxer.Muxer

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

// populate returns a copy of cfg with every default filled in.
func (cfg Config) populate() (Config, error) {
	if cfg.Identity == nil {
		return cfg, fmt.Errorf("%w: Identity is required", ErrInvalidConfig)
	}
	if cfg.Security == nil {
		n, err := noise.New(cfg.Identity, noise.Config{})
		if err != nil {
			return cfg, fmt.Errorf("%w: default Noise transport: %w", ErrInvalidConfig, err)
		}
		t, err := tls.New(cfg.Identity, tls.Config{})
		if err != nil {
			return cfg, fmt.Errorf("%w: default TLS transport: %w", ErrInvalidConfig, err)
		}
		cfg.Security = []security.Transport{n, t}
	} else {
		cfg.Security = append([]security.Transport(nil), cfg.Security...)
	}
	if len(cfg.Security) == 0 {
		return cfg, fmt.Errorf("%w: Security is empty", ErrInvalidConfig)
	}
	if cfg.Muxers == nil {
		y, err := yamux.New(yamux.Config{})
		if err != nil {
			return cfg, fmt.Errorf("%w: default yamux: %w", ErrInvalidConfig, err)
		}
		cfg.Muxers = []muxer.Muxer{y}
	} else {
		cfg.Muxers = append([]muxer.Muxer(nil), cfg.Muxers...)
	}
	if len(cfg.Muxers) == 0 {
		return cfg, fmt.Errorf("%w: Muxers is empty", ErrInvalidConfig)
	}
	seen := map[string]bool{}
	for _, s := range cfg.Security {
		if s == nil || s.ID() == "" || seen[s.ID()] {
			return cfg, fmt.Errorf("%w: security transports must be non-nil with distinct IDs", ErrInvalidConfig)
		}
		seen[s.ID()] = true
	}
	for _, m := range cfg.Muxers {
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
	if cfg.AcceptBacklog == 0 {
		cfg.AcceptBacklog = DefaultAcceptBacklog
	}
	if cfg.HandshakeTimeout < 0 || cfg.StageTimeouts.Simopen < 0 || cfg.StageTimeouts.Security < 0 || cfg.StageTimeouts.Muxer < 0 {
		return cfg, fmt.Errorf("%w: timeouts must not be negative", ErrInvalidConfig)
	}
	if cfg.MaxInboundUpgrades < 0 || cfg.MaxInboundUpgradesPerIP < 0 || cfg.AcceptBacklog < 0 {
		return cfg, fmt.Errorf("%w: limits must not be negative", ErrInvalidConfig)
	}
	return cfg, nil
}
