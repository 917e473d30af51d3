package perf

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/concordp2p/concord/host/internal/watchdog"
	"io"
	"sync"
	"time"
)

// Specification constants (perf/perf.md).
const (
	// ID is the protocol ID negotiated with multistream-select.
	ID = "/perf/1.0.0"
	// HeaderSize is the length of the client's request: the number of
	// bytes it wants back, big-endian.
	HeaderSize = 8
)

// Implementation constants.
const (
	// BlockSize is the size of each write, and of the read buffer.
	BlockSize = 64 << 10
	// DefaultMaxDownload is the most a Server sends when MaxDownload is zero.
	DefaultMaxDownload = 1 << 30
	// DefaultIdleTimeout bounds each read and write when IdleTimeout is zero.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultProgressInterval is the least time between progress reports
	// when Client.ProgressInterval is zero.
	DefaultProgressInterval = time.Second
)

var (
	// ErrDownloadTooLarge means the client asked for more than the
	// server's MaxDownload.
	ErrDownloadTooLarge = errors.New("perf: requested download exceeds the server's limit")
	// ErrTruncatedHeader means the stream ended inside the 8-byte header.
	ErrTruncatedHeader = errors.New("perf: stream ended inside the header")
	// ErrShortDownload means the server ended the stream before sending
	// every byte requested.
	ErrShortDownload = errors.New("perf: server sent fewer bytes than requested")
	// ErrLongDownload means the server sent more bytes than requested.
	ErrLongDownload = errors.New("perf: server sent more bytes than requested")
	// ErrIdleTimeout means a read or write made no progress for the idle
	// timeout.
	ErrIdleTimeout = errors.New("perf: stream idle too long")
)

// Stream is what the protocol needs of a negotiated stream. muxer.Stream
// and *net.TCPConn satisfy it. A server aborts a stream that also has a
// Reset() error method, as muxer.Stream does, with Reset rather than Close:
// the peer learns at once, even while it is still writing.
type Stream interface {
	io.Reader
	io.Writer
	CloseWrite() error
	Close() error
	SetDeadline(time.Time) error
}

// blocks recycles BlockSize buffers between transfers. Holders clear a
// buffer before sending from it: it may hold another peer's upload.
var blocks = sync.Pool{New: func() any { b := make([]byte, BlockSize); return &b }}

// Server answers perf streams. The zero value is ready to use, with the
// defaults.
type Server struct {
	// MaxDownload is the most the server agrees to send on one stream.
	// Zero means DefaultMaxDownload.
	MaxDownload uint64
	// IdleTimeout bounds each read and each write. Zero or negative means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
}

// Serve is Server{}.Serve: it answers with the default limits.
func Serve(ctx context.Context, s Stream) error { return Server{}.Serve(ctx, s) }

// Serve reads the client's request and upload from s, sends the bytes
// requested, and closes s, returning nil. It closes s on every path: after
// ErrIdleTimeout; after ErrTruncatedHeader, ErrDownloadTooLarge or another
// error, resetting s when it has a Reset method; and when ctx ends,
// returning context.Cause(ctx).
func (srv Server) Serve(ctx context.Context, s Stream) (err error) {
	limit, idle := srv.MaxDownload, srv.IdleTimeout
	if limit == 0 {
		limit = DefaultMaxDownload
	}
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	w := watchdog.Watch(ctx, s, idle)
	defer func() { err = w.ReleaseServer(ctx, err, ErrIdleTimeout) }()

	var hdr [HeaderSize]byte
	w.Arm() // one deadline for the whole header, however it trickles in
	if _, err := io.ReadFull(s, hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = fmt.Errorf("%w: %w", ErrTruncatedHeader, err)
		}
		return fmt.Errorf("perf: reading header: %w", err)
	}
	n := binary.BigEndian.Uint64(hdr[:])
	if n > limit {
		return fmt.Errorf("%w: asked for %d bytes, limit %d", ErrDownloadTooLarge, n, limit)
	}

	buf := blocks.Get().(*[]byte)
	defer blocks.Put(buf)
	for {
		_, err := w.Read(*buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("perf: reading upload: %w", err)
		}
	}
	clear(*buf)
	if err := send(w, *buf, n, nil); err != nil {
		return fmt.Errorf("perf: sending download: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("perf: closing write side: %w", err)
	}
	return nil
}

// send writes n bytes of buf, in blocks of len(buf), calling sent (if not
// nil) after each write.
func send(w io.Writer, buf []byte, n uint64, sent func(int)) error {
	for n > 0 {
		b := buf[:min(n, uint64(len(buf)))]
		k, err := w.Write(b)
		n -= uint64(k)
		if sent != nil {
			sent(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
