package concordlibp2p

import (
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/webrtc"
	"github.com/libp2p/go-libp2p/p2p/transport/websocket"
	"github.com/libp2p/go-libp2p/p2p/transport/webtransport"

	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Defaults of this transport where they differ from Concord's layers.
const (
	// DefaultCloseTimeout bounds a connection's graceful close.
	DefaultCloseTimeout = 5 * time.Second
	// DefaultMaxIncomingStreams replaces yamux's own default (128): in a
	// go-libp2p host the resource manager limits streams per connection,
	// peer and protocol, as it does for go-libp2p's yamux, which sets no
	// limit of its own.
	DefaultMaxIncomingStreams = 4096
	// DefaultAcceptBacklog replaces yamux's own default (64) with
	// go-yamux's (256), which go-libp2p uses: a peer may open many
	// streams at once (go-libp2p's transport suite opens 1000), and one
	// that finds the backlog full is reset. go-yamux also uses it as the
	// opener's bound on unacknowledged streams, so a larger value would
	// overrun a stock go-libp2p peer's backlog.
	DefaultAcceptBacklog = 256
	// DefaultTLSCertificateReuse replaces the TLS layer's default of a
	// new certificate key and certificate for every connection: a host
	// reuses one for an hour. go-libp2p's TLS makes one for the life of
	// the transport. Making one costs a P-256 key, an identity-key
	// signature and a certificate signature, about a fifth of a TLS
	// handshake's CPU on both ends; reusing it reveals nothing new, since
	// the certificate carries the host's identity key anyway.
	DefaultTLSCertificateReuse = time.Hour
)

// ErrInvalidConfig is wrapped by NewTransport's errors about its options.
var ErrInvalidConfig = errors.New("concordlibp2p: invalid config")

// Config configures a Transport: Concord's layer Configs, nested as in
// host.Config, plus what only the go-libp2p side needs. Zero values mean
// the documented defaults of each layer.
type Config struct {
	// TCP configures the socket layer: connect timeout (5 s), TCP
	// keepalive (15 s), TCP_USER_TIMEOUT (20 s), port reuse and sharing.
	TCP tcp.Config
	// Upgrader configures simopen, security (Noise then TLS), yamux,
	// stage and handshake timeouts and the admission limits. Two yamux
	// defaults are this transport's: DefaultMaxIncomingStreams and
	// DefaultAcceptBacklog, and so is one TLS default:
	// Security.TLS.ReuseCertificateFor is DefaultTLSCertificateReuse
	// (negative: a new certificate for every connection). Identity,
	// Gater and Observer are the transport's and must be left zero: the
	// identity is the host's key, and go-libp2p's connection gater and
	// resource manager are wired in by NewTransport.
	Upgrader upgrader.Config
	// CloseTimeout bounds Close: the wait for the streams' data and the
	// go-away to be written and for the peer to close in return. If zero,
	// DefaultCloseTimeout (5 s); negative: close at once (no go-away).
	CloseTimeout time.Duration
}

// Option configures a Transport. Options are applied in order.
type Option func(*Config)

// WithConfig replaces the whole Config.
func WithConfig(cfg Config) Option { return func(c *Config) { *c = cfg } }

// WithSecurity sets the security protocols offered, most preferred first:
// "/noise" and/or "/tls/1.0.0". Default: both, Noise first.
func WithSecurity(protocols ...string) Option {
	return func(c *Config) { c.Upgrader.Security.Protocols = protocols }
}

func (c Config) validate() error {
	if c.Upgrader.Identity != nil || c.Upgrader.Gater != nil || c.Upgrader.Observer != nil {
		return fmt.Errorf("%w: Upgrader.Identity, Gater and Observer are set by the transport; leave them zero", ErrInvalidConfig)
	}
	return nil
}

// withDefaults fills the defaults that are this transport's.
func (c Config) withDefaults() Config {
	y := &c.Upgrader.Muxer.Yamux
	if c.Upgrader.Muxer.Muxers == nil {
		if y.MaxIncomingStreams == 0 {
			y.MaxIncomingStreams = DefaultMaxIncomingStreams
		}
		if y.AcceptBacklog == 0 {
			y.AcceptBacklog = DefaultAcceptBacklog
		}
	}
	if c.Upgrader.Security.Transports == nil && c.Upgrader.Security.TLS.ReuseCertificateFor == 0 {
		c.Upgrader.Security.TLS.ReuseCertificateFor = DefaultTLSCertificateReuse
	}
	return c
}

func (c Config) closeTimeout() time.Duration {
	if c.CloseTimeout == 0 {
		return DefaultCloseTimeout
	}
	return c.CloseTimeout
}

// Transports is go-libp2p's default set of transports with its TCP
// transport replaced by Concord's, configured by opts: the one option a
// go-libp2p user adds to libp2p.New. Like libp2p.DefaultTransports it
// replaces the defaults only when no other libp2p.Transport option is
// given.
func Transports(opts ...Option) libp2p.Option {
	tpt := libp2p.Transport(NewTransport)
	if len(opts) > 0 {
		args := make([]any, len(opts))
		for i, o := range opts {
			args[i] = o
		}
		tpt = libp2p.Transport(NewTransport, args...)
	}
	return libp2p.ChainOptions(
		tpt,
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Transport(websocket.New),
		libp2p.Transport(libp2pwebtransport.New),
		libp2p.Transport(libp2pwebrtc.New),
	)
}
