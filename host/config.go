package host

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security/noise"
	"github.com/concordp2p/concord/security/tls"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Defaults for the zero values of Config.
const (
	DefaultNegotiationTimeout = 10 * time.Second
	DefaultDialStagger        = 250 * time.Millisecond
	DefaultDialTimeout        = 15 * time.Second
	DefaultBackoffBase        = time.Second
	DefaultBackoffCap         = 5 * time.Minute
	DefaultTieRetries         = 3
	DefaultResetRetries       = 1
	DefaultHelloRetries       = 2
	DefaultDuplicateGrace     = 10 * time.Second
	DefaultHelloTimeout       = 10 * time.Second
	DefaultProbeTimeout       = 500 * time.Millisecond
	DefaultCloseTimeout       = 5 * time.Second
	DefaultIdentifyTimeout    = 10 * time.Second
)

// Security protocol IDs for Config.Upgrader.Security.Protocols.
const (
	SecurityNoise = noise.ID
	SecurityTLS   = tls.ID
)

// ErrInvalidConfig is wrapped by New's configuration errors.
var ErrInvalidConfig = errors.New("host: invalid config")

// Config configures a Host. Zero values mean the documented defaults; New
// copies it.
type Config struct {
	// Identity is the host's private key. If nil, a fresh Ed25519 key is
	// generated (an ephemeral identity: use peer.ReadKeyFile for a
	// lasting one).
	Identity peer.PrivKey

	// ListenAddrs are the multiaddrs to listen on, e.g.
	// /ip4/0.0.0.0/tcp/4001. None means a host that only dials.
	ListenAddrs []ma.Multiaddr

	// TCP configures the transport: connect timeout (5 s), keepalive,
	// TCP_USER_TIMEOUT (20 s), backlog, port reuse.
	TCP tcp.Config

	// Upgrader configures the pipeline each connection goes through: the
	// simopen limits, the security protocols (Security.Protocols: Noise
	// then TLS by default; Security.Noise and Security.TLS), the muxer
	// (Muxer.Yamux: keepalive 10 s interval and 10 s timeout, so a silent
	// peer is detected within 20 s; windows; stream limits), the whole
	// and per-stage handshake timeouts (10 s), the admission limits of
	// inbound upgrades (64 in flight, 16 per IP, 64 waiting) and the
	// gater. Its Identity, Observer and Rand are the host's own (Identity,
	// Observer and Rand below) and must be left zero.
	Upgrader upgrader.Config

	// NegotiationTimeout bounds the multistream-select of a stream's
	// protocol, on both sides. Default 10 s.
	NegotiationTimeout time.Duration

	// DialStagger is the delay before the next address of a peer is
	// tried while earlier ones are still dialing. Default 250 ms.
	DialStagger time.Duration
	// DialTimeout bounds one Connect's dial of all addresses, handshakes
	// included. Default 15 s.
	DialTimeout time.Duration
	// BackoffBase and BackoffCap shape the per-address dial backoff after
	// failures: the n-th consecutive failure blocks the address until a
	// delay drawn uniformly from [0, min(cap, base·2^(n-1))) (full
	// jitter) has passed since the failed attempt began. The delay spaces
	// the starts of the attempts: a quick failure (refused, unreachable)
	// waits it out, while an attempt that took longer than its delay — a
	// connect that timed out (TCP.ConnectTimeout, 5 s) while the kernel
	// retransmitted its SYN on a path that drops everything — is followed
	// at once. So while base·2^(n-1) stays below the connect timeout
	// (the first four attempts, ~20 s of an outage, with the defaults) a
	// SYN is always in flight and a returning path is found within the
	// kernel's SYN retransmission interval (1 s on Linux 6.7 and later
	// for the first four retransmissions; 1 s, then 2 s before), and a
	// peer that stays unreachable is dialed ever more rarely after that,
	// once per BackoffCap/2 on average. Failures count from the
	// last connection to the peer: a connection that opens, in either
	// direction, forgets them, except those of an address that failed
	// while another address of the peer answered (AddrBackoff.Elsewhere).
	// Defaults 1 s and 5 min.
	BackoffBase time.Duration
	BackoffCap  time.Duration
	// TieRetries bounds the redials after an election tie
	// (upgrader.ErrSimopenTie), and separately those after a TCP
	// simultaneous open with a peer without simopen
	// (upgrader.ErrPeerWithoutSimopen: both dials fail, the redial is an
	// ordinary one). Each redial waits a jittered delay (full jitter,
	// base 50 ms, doubling, cap 1 s). Default 3; negative: none.
	TieRetries int
	// ResetRetries bounds the redials of an address whose connection was
	// reset or closed by the other end before the security handshake
	// began: the peer's kernel aborted it on an accept queue overflow
	// (tcp_abort_on_overflow), or its listener refused it over an
	// admission limit. Only multistream-select had been exchanged, so
	// nothing of the application's was lost and redialing is safe. The
	// redials wait a jittered delay (full jitter, base 100 ms, doubling)
	// so that a loaded listener is not hit again at once. The default is
	// one redial: the client cannot tell an overflow from a deliberate
	// refusal, and more redials would multiply the load on a listener
	// that refuses because it is full. Default 1; negative: none.
	ResetRetries int

	// KeepAll keeps every connection to a peer, as libp2p does, instead
	// of resolving duplicates to one.
	KeepAll bool
	// DuplicateGrace is how long a connection that lost duplicate
	// resolution keeps serving its open streams before it closes.
	// Default 10 s.
	DuplicateGrace time.Duration
	// HelloTimeout bounds each half of the hello exchange on a new
	// connection: sending this host's hello (the stream opened, the
	// protocol agreed, the message written), and reading the peer's
	// once its hello stream is accepted. A half that fails is reported
	// as a HelloFailed event (ErrHelloTimeout); the connection stays up.
	// A peer that never opens a hello stream is not timed. Default 10 s.
	HelloTimeout time.Duration
	// HelloRetries bounds the new attempts at sending this host's hello
	// after one failed (not refused with "na") while the connection is
	// still active: without the hello the peer cannot tell which
	// connection this end holds, so a pair could never be seen to agree.
	// Each waits a jittered delay (full jitter, base 1 s, doubling, cap
	// HelloTimeout) and is reported like the first. Default 2; negative:
	// none.
	HelloRetries int
	// CloseTimeout bounds a graceful close (Conn.Close, Host.Close): the
	// time its streams get to end and its data to be delivered before the
	// connection is closed anyway. Default 5 s.
	CloseTimeout time.Duration
	// ProbeTimeout bounds the ping that probes an older connection to a
	// peer without the hello protocol before a duplicate is closed.
	// Default 500 ms.
	ProbeTimeout time.Duration

	// IdentifyTimeout bounds each identify exchange: the request to a new
	// peer, the answer to one, a push sent or received. Default 10 s.
	IdentifyTimeout time.Duration
	// AgentVersion and ProtocolVersion are what identify tells peers.
	// Defaults "concord/<module version>" and DefaultProtocolVersion.
	AgentVersion    string
	ProtocolVersion string

	// Protocols chooses the stream protocols the host serves itself:
	// ping by default; echo and perf when configured.
	Protocols Protocols

	// Observer, if not nil, receives every Event, synchronously; it must
	// not block.
	Observer func(Event)
	// Logger receives debug logs. Default: none.
	Logger *slog.Logger
	// Rand is the randomness source for the incarnation and the
	// elections. Default crypto/rand.
	Rand io.Reader
}

func (cfg Config) populate() (Config, error) {
	var err error
	if cfg.Identity == nil {
		if cfg.Identity, err = peer.GenerateKey(peer.Ed25519, cfg.Rand); err != nil {
			return cfg, fmt.Errorf("%w: generating identity: %w", ErrInvalidConfig, err)
		}
	}
	if u := cfg.Upgrader; u.Identity != nil || u.Observer != nil || u.Rand != nil {
		return cfg, fmt.Errorf("%w: Upgrader.Identity, Observer and Rand are the host's own (Config.Identity, Observer, Rand); leave them zero", ErrInvalidConfig)
	}
	cfg.ListenAddrs = append([]ma.Multiaddr(nil), cfg.ListenAddrs...)
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.NegotiationTimeout, DefaultNegotiationTimeout)
	def(&cfg.DialStagger, DefaultDialStagger)
	def(&cfg.DialTimeout, DefaultDialTimeout)
	def(&cfg.BackoffBase, DefaultBackoffBase)
	def(&cfg.BackoffCap, DefaultBackoffCap)
	def(&cfg.DuplicateGrace, DefaultDuplicateGrace)
	def(&cfg.HelloTimeout, DefaultHelloTimeout)
	def(&cfg.ProbeTimeout, DefaultProbeTimeout)
	def(&cfg.CloseTimeout, DefaultCloseTimeout)
	def(&cfg.IdentifyTimeout, DefaultIdentifyTimeout)
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = defaultAgentVersion()
	}
	if cfg.ProtocolVersion == "" {
		cfg.ProtocolVersion = DefaultProtocolVersion
	}
	if cfg.TieRetries == 0 {
		cfg.TieRetries = DefaultTieRetries
	}
	if cfg.ResetRetries == 0 {
		cfg.ResetRetries = DefaultResetRetries
	}
	if cfg.HelloRetries == 0 {
		cfg.HelloRetries = DefaultHelloRetries
	}
	for _, d := range []time.Duration{cfg.NegotiationTimeout, cfg.DialStagger, cfg.DialTimeout, cfg.BackoffBase,
		cfg.BackoffCap, cfg.DuplicateGrace, cfg.HelloTimeout, cfg.ProbeTimeout, cfg.CloseTimeout, cfg.IdentifyTimeout} {
		if d < 0 {
			return cfg, fmt.Errorf("%w: durations must not be negative", ErrInvalidConfig)
		}
	}
	if cfg.BackoffCap < cfg.BackoffBase {
		return cfg, fmt.Errorf("%w: BackoffCap %v below BackoffBase %v", ErrInvalidConfig, cfg.BackoffCap, cfg.BackoffBase)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}
