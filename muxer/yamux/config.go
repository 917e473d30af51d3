package yamux

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
)

// Concord's defaults. The yamux spec fixes only the initial window.
const (
	// DefaultKeepAliveInterval: a session that has received nothing for
	// this long sends a ping.
	DefaultKeepAliveInterval = 10 * time.Second
	// DefaultPingTimeout: a ping unanswered for this long closes the
	// session, so a silent peer is detected within
	// DefaultKeepAliveInterval + DefaultPingTimeout = 20 s (go-libp2p's
	// yamux settings take 30 s + 10 s).
	DefaultPingTimeout = 10 * time.Second
	// DefaultWriteStallTimeout: a stream Write that makes no progress for
	// this long fails with muxer.ErrWriteStalled.
	DefaultWriteStallTimeout = 30 * time.Second
	// DefaultMaxIncomingStreams bounds the streams the peer may have open
	// towards us at once; beyond it new streams are reset at once.
	DefaultMaxIncomingStreams = 128
	// DefaultAcceptBacklog bounds inbound streams not yet accepted; beyond
	// it new streams are reset at once. It also bounds our own streams
	// opened but not yet acknowledged by the peer.
	DefaultAcceptBacklog = 64
	// DefaultMaxStreamWindow is the largest receive window a stream grows
	// to when the application reads fast on a long-RTT path.
	DefaultMaxStreamWindow = 8 << 20
	// DefaultReadBufferSize is the session's read buffer on the
	// connection: none. Concord runs yamux over a secured connection, and
	// both Noise and TLS connections already buffer what they decrypt, so a
	// second buffer only copies; go-libp2p sets go-yamux's ReadBufSize to 0
	// for the same reason. Without it an idle connection is 8.8 KiB lighter
	// (both ends; live heap per idle connection 0.67x go-libp2p's instead
	// of 1.00x) at equal bulk throughput (BENCHMARKS.md). Over an
	// unsecured connection set Config.ReadBufferSize, which saves a read
	// system call per frame header.
	DefaultReadBufferSize = 0
	// DefaultMaxMessageSize is the largest frame sent, header included, so
	// that one stream cannot hog the connection for long. It is 65519, not
	// go-yamux's 64 KiB, so that a full frame fits one Noise transport
	// message (65535 bytes less the 16-byte tag): at 64 KiB every full
	// frame cost two encryptions and two writes, and bulk throughput over
	// Noise was 0.92x go-libp2p's; at 65519 it was 1.05x (BENCHMARKS.md).
	DefaultMaxMessageSize = 65519
	// DefaultMeasureRTTInterval is how often the session measures its RTT,
	// which steers receive-window growth.
	DefaultMeasureRTTInterval = 30 * time.Second
)

// Spec constants (yamux spec.md).
const (
	// initialStreamWindow is the receive window every stream starts with;
	// go-yamux refuses a smaller MaxStreamWindow.
	initialStreamWindow = 256 << 10
	// headerSize is the yamux frame header: version(1) type(1) flags(2)
	// stream ID(4) length(4), big endian.
	headerSize = 12
)

// Config tunes a Muxer. The zero value means Concord's defaults, listed
// with each field. A Config is copied by New; changing it afterwards has no
// effect.
type Config struct {
	// KeepAliveInterval is how long a session may receive nothing before
	// it pings the peer. Zero means DefaultKeepAliveInterval (10 s);
	// negative disables keepalive, which leaves dead-peer detection to the
	// caller.
	KeepAliveInterval time.Duration

	// PingTimeout bounds each ping: the time to hand it to the connection
	// and then the time to receive the answer. In go-yamux the same knob
	// (ConnectionWriteTimeout) also bounds every write to the connection:
	// a connection write blocked this long (the peer stopped reading the
	// connection) closes the session. Zero means DefaultPingTimeout
	// (10 s).
	//
	// A silent peer is detected within KeepAliveInterval + PingTimeout of
	// the last frame received from it.
	PingTimeout time.Duration

	// WriteStallTimeout is how long a stream Write may make no progress
	// before it fails with muxer.ErrWriteStalled. Progress means that the
	// session accepted some bytes of the write, which needs flow-control
	// credit from the peer and room in the session's send queue. The
	// failure comes at most a quarter of the timeout late. Zero means
	// DefaultWriteStallTimeout (30 s); it cannot be disabled.
	WriteStallTimeout time.Duration

	// MaxIncomingStreams bounds the streams the peer may have open towards
	// this side at once. Zero means DefaultMaxIncomingStreams (128).
	MaxIncomingStreams int

	// AcceptBacklog bounds the inbound streams waiting for AcceptStream
	// and this side's streams not yet acknowledged by the peer. Zero means
	// DefaultAcceptBacklog (64).
	AcceptBacklog int

	// MaxStreamWindow is the largest receive window of a stream, in bytes
	// (at least the spec's initial 256 KiB). Zero means
	// DefaultMaxStreamWindow (8 MiB).
	MaxStreamWindow uint32

	// ReadBufferSize is the size of the session's buffered reader on the
	// connection. Zero means DefaultReadBufferSize (no buffer); negative
	// also means no buffer.
	ReadBufferSize int

	// MaxMessageSize is the largest data frame sent, in bytes, at least
	// 1024. Zero means DefaultMaxMessageSize (65519).
	MaxMessageSize uint32

	// MeasureRTTInterval is how often the session pings to measure its
	// RTT. Zero means DefaultMeasureRTTInterval (30 s).
	MeasureRTTInterval time.Duration

	// Logger receives go-yamux's log lines (peer misbehaviour, dropped
	// streams), at Error level for "[ERR]" and Warn for "[WARN]". Nil
	// discards them.
	Logger *slog.Logger
}

// ErrInvalidConfig is returned by New for a Config it cannot use.
var ErrInvalidConfig = errors.New("invalid yamux config")

// resolved is a Config with every default filled in and checked.
type resolved struct {
	keepAlive      time.Duration // 0: disabled
	pingTimeout    time.Duration
	writeStall     time.Duration
	maxIncoming    int
	acceptBacklog  int
	maxWindow      uint32
	readBuffer     int // 0: unbuffered
	maxMessageSize uint32
	measureRTT     time.Duration
	logger         *slog.Logger
}

func (c Config) resolve() (resolved, error) {
	r := resolved{
		keepAlive:      orDefault(c.KeepAliveInterval, DefaultKeepAliveInterval),
		pingTimeout:    orDefault(c.PingTimeout, DefaultPingTimeout),
		writeStall:     orDefault(c.WriteStallTimeout, DefaultWriteStallTimeout),
		maxIncoming:    orDefault(c.MaxIncomingStreams, DefaultMaxIncomingStreams),
		acceptBacklog:  orDefault(c.AcceptBacklog, DefaultAcceptBacklog),
		maxWindow:      orDefault(c.MaxStreamWindow, DefaultMaxStreamWindow),
		readBuffer:     orDefault(c.ReadBufferSize, DefaultReadBufferSize),
		maxMessageSize: orDefault(c.MaxMessageSize, DefaultMaxMessageSize),
		measureRTT:     orDefault(c.MeasureRTTInterval, DefaultMeasureRTTInterval),
		logger:         c.Logger,
	}
	if r.keepAlive < 0 {
		r.keepAlive = 0
	}
	if r.readBuffer < 0 {
		r.readBuffer = 0
	}
	switch {
	case r.pingTimeout < 0:
		return r, fmt.Errorf("%w: PingTimeout %v is negative", ErrInvalidConfig, r.pingTimeout)
	case r.writeStall < 0:
		return r, fmt.Errorf("%w: WriteStallTimeout %v is negative", ErrInvalidConfig, r.writeStall)
	case r.maxIncoming < 0:
		return r, fmt.Errorf("%w: MaxIncomingStreams %d is negative", ErrInvalidConfig, r.maxIncoming)
	case r.acceptBacklog < 0:
		return r, fmt.Errorf("%w: AcceptBacklog %d is negative", ErrInvalidConfig, r.acceptBacklog)
	case r.maxWindow < initialStreamWindow:
		return r, fmt.Errorf("%w: MaxStreamWindow %d is below the spec's initial window %d", ErrInvalidConfig, r.maxWindow, initialStreamWindow)
	case r.maxMessageSize < 1024:
		return r, fmt.Errorf("%w: MaxMessageSize %d is below 1024", ErrInvalidConfig, r.maxMessageSize)
	case r.measureRTT < 0:
		return r, fmt.Errorf("%w: MeasureRTTInterval %v is negative", ErrInvalidConfig, r.measureRTT)
	}
	return r, nil
}

// yamuxConfig is the go-yamux configuration for r. It is built per session
// because go-yamux keeps a pointer to it.
func (r *resolved) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = r.acceptBacklog
	c.EnableKeepAlive = r.keepAlive > 0
	c.KeepAliveInterval = r.keepAlive
	if !c.EnableKeepAlive {
		c.KeepAliveInterval = DefaultKeepAliveInterval // go-yamux checks it even when disabled
	}
	c.MeasureRTTInterval = r.measureRTT
	c.ConnectionWriteTimeout = r.pingTimeout
	c.MaxIncomingStreams = uint32(r.maxIncoming)
	c.InitialStreamWindowSize = initialStreamWindow
	c.MaxStreamWindowSize = r.maxWindow
	c.ReadBufSize = r.readBuffer
	c.MaxMessageSize = r.maxMessageSize
	c.LogOutput = io.Discard
	if r.logger != nil {
		c.LogOutput = &logWriter{logger: r.logger}
	}
	return c
}

func orDefault[T int | uint32 | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}
