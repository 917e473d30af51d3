package yamux

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
)

// Concord's defaults; the package doc says why. The yamux spec fixes only
// the initial window.
const (
	DefaultKeepAliveInterval  = 10 * time.Second
	DefaultPingTimeout        = 10 * time.Second
	DefaultWriteStallTimeout  = 30 * time.Second
	DefaultMaxIncomingStreams = 128
	DefaultAcceptBacklog      = 64
	DefaultMaxStreamWindow    = 8 << 20
	// DefaultReadBufferSize is none: Noise and TLS connections buffer what
	// they decrypt already (BENCHMARKS.md, "yamux read buffer").
	DefaultReadBufferSize = 0
	// DefaultMaxMessageSize is 65519 so that a full frame, header
	// included, fits one Noise transport message (65535 bytes less the
	// 16-byte tag); go-yamux's 64 KiB needs two (BENCHMARKS.md).
	DefaultMaxMessageSize     = 65519
	DefaultMeasureRTTInterval = 30 * time.Second
)

// initialStreamWindow is the receive window every stream starts with (spec);
// go-yamux refuses a smaller MaxStreamWindow.
const initialStreamWindow = 256 << 10

// Config tunes a Muxer. Zero fields mean the defaults named with each. New
// copies it.
type Config struct {
	// KeepAliveInterval is how long a session may receive nothing before
	// it pings the peer. Zero means DefaultKeepAliveInterval (10 s);
	// negative disables keepalive, leaving dead-peer detection to the
	// caller.
	KeepAliveInterval time.Duration

	// PingTimeout bounds each ping: handing it to the connection, then
	// the answer. go-yamux uses the same knob (ConnectionWriteTimeout) to
	// bound every write to the connection, so a peer that stops reading
	// the connection closes the session after it too. A silent peer is
	// detected within KeepAliveInterval + PingTimeout of its last frame.
	// Zero means DefaultPingTimeout (10 s).
	PingTimeout time.Duration

	// WriteStallTimeout is how long a stream Write may make no progress
	// (the session accepts none of its bytes, for want of the peer's
	// flow-control credit or of room in the send queue) before it fails
	// with muxer.ErrWriteStalled. It fails that long after its last
	// progress, late only by as long as its last bytes waited in the
	// session's send queue (none unless the connection is backlogged).
	// Zero means DefaultWriteStallTimeout (30 s); it cannot be disabled.
	WriteStallTimeout time.Duration

	// MaxIncomingStreams bounds the streams the peer may have open towards
	// this side at once; beyond it go-yamux resets new ones. Zero means
	// DefaultMaxIncomingStreams (128).
	MaxIncomingStreams int

	// AcceptBacklog bounds the inbound streams waiting for AcceptStream
	// (beyond it go-yamux resets new ones) and this side's streams not yet
	// acknowledged by the peer. Zero means DefaultAcceptBacklog (64).
	AcceptBacklog int

	// MaxStreamWindow is the largest receive window a stream grows to, in
	// bytes, at least the spec's initial 256 KiB. Zero means
	// DefaultMaxStreamWindow (8 MiB).
	MaxStreamWindow uint32

	// ReadBufferSize is the session's read buffer on the connection. Zero
	// or negative means none (DefaultReadBufferSize); over an unsecured
	// connection a buffer saves a read call per frame header.
	ReadBufferSize int

	// MaxMessageSize is the largest data frame sent, header included, at
	// least 1024. Zero means DefaultMaxMessageSize (65519).
	MaxMessageSize uint32

	// MeasureRTTInterval is how often the session pings to measure its
	// RTT, which steers window growth. Zero means
	// DefaultMeasureRTTInterval (30 s).
	MeasureRTTInterval time.Duration

	// Logger receives go-yamux's log lines (peer misbehaviour, refused
	// streams): "[ERR]" at Error level, "[WARN]" at Warn. Nil discards
	// them.
	Logger *slog.Logger
}

// ErrInvalidConfig is returned by New for a Config it cannot use.
var ErrInvalidConfig = errors.New("invalid yamux config")

// resolve returns c with every default filled in, KeepAliveInterval 0 when
// disabled and ReadBufferSize 0 when none, or an error wrapping
// ErrInvalidConfig.
func (c Config) resolve() (Config, error) {
	c.KeepAliveInterval = max(0, orDefault(c.KeepAliveInterval, DefaultKeepAliveInterval))
	c.PingTimeout = orDefault(c.PingTimeout, DefaultPingTimeout)
	c.WriteStallTimeout = orDefault(c.WriteStallTimeout, DefaultWriteStallTimeout)
	c.MaxIncomingStreams = orDefault(c.MaxIncomingStreams, DefaultMaxIncomingStreams)
	c.AcceptBacklog = orDefault(c.AcceptBacklog, DefaultAcceptBacklog)
	c.MaxStreamWindow = orDefault(c.MaxStreamWindow, DefaultMaxStreamWindow)
	c.ReadBufferSize = max(0, orDefault(c.ReadBufferSize, DefaultReadBufferSize))
	c.MaxMessageSize = orDefault(c.MaxMessageSize, DefaultMaxMessageSize)
	c.MeasureRTTInterval = orDefault(c.MeasureRTTInterval, DefaultMeasureRTTInterval)
	switch {
	case c.PingTimeout < 0:
		return c, fmt.Errorf("%w: PingTimeout %v is negative", ErrInvalidConfig, c.PingTimeout)
	case c.WriteStallTimeout < 0:
		return c, fmt.Errorf("%w: WriteStallTimeout %v is negative", ErrInvalidConfig, c.WriteStallTimeout)
	case c.MaxIncomingStreams < 0:
		return c, fmt.Errorf("%w: MaxIncomingStreams %d is negative", ErrInvalidConfig, c.MaxIncomingStreams)
	case c.AcceptBacklog < 0:
		return c, fmt.Errorf("%w: AcceptBacklog %d is negative", ErrInvalidConfig, c.AcceptBacklog)
	case c.MaxStreamWindow < initialStreamWindow:
		return c, fmt.Errorf("%w: MaxStreamWindow %d is below the spec's initial window %d", ErrInvalidConfig, c.MaxStreamWindow, initialStreamWindow)
	case c.MaxMessageSize < 1024:
		return c, fmt.Errorf("%w: MaxMessageSize %d is below 1024", ErrInvalidConfig, c.MaxMessageSize)
	case c.MeasureRTTInterval < 0:
		return c, fmt.Errorf("%w: MeasureRTTInterval %v is negative", ErrInvalidConfig, c.MeasureRTTInterval)
	}
	return c, nil
}

// yamuxConfig is go-yamux's configuration for a resolved c. It is built
// per session because go-yamux keeps the pointer.
func (c *Config) yamuxConfig() *yamux.Config {
	y := yamux.DefaultConfig()
	y.AcceptBacklog = c.AcceptBacklog
	y.EnableKeepAlive = c.KeepAliveInterval > 0
	if y.EnableKeepAlive { // else go-yamux's default, which it checks anyway
		y.KeepAliveInterval = c.KeepAliveInterval
	}
	y.MeasureRTTInterval = c.MeasureRTTInterval
	y.ConnectionWriteTimeout = c.PingTimeout
	y.MaxIncomingStreams = uint32(c.MaxIncomingStreams)
	y.InitialStreamWindowSize = initialStreamWindow
	y.MaxStreamWindowSize = c.MaxStreamWindow
	y.ReadBufSize = c.ReadBufferSize
	y.MaxMessageSize = c.MaxMessageSize
	y.LogOutput = io.Discard
	if c.Logger != nil {
		y.LogOutput = &logWriter{logger: c.Logger}
	}
	return y
}

func orDefault[T int | uint32 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
