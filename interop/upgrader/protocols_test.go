package upgrader

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"testing"

	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lptransport "github.com/libp2p/go-libp2p/core/transport"
	mss "github.com/multiformats/go-multistream"

	"github.com/concordp2p/concord/muxer"
	cupgrader "github.com/concordp2p/concord/upgrader"
)

// The test protocols, negotiated with multistream-select on every stream.
const (
	// echoProto: the responder echoes every byte until EOF, then closes
	// its write side.
	echoProto = "/interop/echo/1.0.0"
	// sinkProto: the responder reads until EOF and answers the byte count
	// (8 bytes, big endian) and the SHA-256 of what it read.
	sinkProto = "/interop/sink/1.0.0"
	// pingProto is libp2p's ping: 32-byte messages echoed until EOF.
	pingProto = "/ipfs/ping/1.0.0"
	pingSize  = 32
)

// stream is what both libraries' streams have in common: Concord's
// muxer.Stream, go-libp2p's network.MuxedStream and network.Stream.
type stream interface {
	io.ReadWriteCloser
	CloseWrite() error
	Reset() error
}

// muxedConn opens and accepts streams on one end of a connection.
type muxedConn interface {
	openStream(ctx context.Context) (stream, error)
	acceptStream(ctx context.Context) (stream, error)
	close() error
}

type concordConn struct{ c *cupgrader.Conn }

func (c concordConn) openStream(ctx context.Context) (stream, error)   { return c.c.OpenStream(ctx) }
func (c concordConn) acceptStream(ctx context.Context) (stream, error) { return c.c.AcceptStream(ctx) }
func (c concordConn) close() error                                     { return c.c.Close() }

// lpConn adapts go-libp2p's CapableConn; its AcceptStream has no context
// and returns when the connection closes.
type lpConn struct{ c lptransport.CapableConn }

func (c lpConn) openStream(ctx context.Context) (stream, error) { return c.c.OpenStream(ctx) }
func (c lpConn) acceptStream(context.Context) (stream, error)   { return c.c.AcceptStream() }
func (c lpConn) close() error                                   { return c.c.Close() }

// server answers the test protocols on every stream a connection accepts.
type server struct {
	mux    *mss.MultistreamMuxer[string]
	conn   muxedConn
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	errs []error // handler failures, reported at stop
}

// serve starts answering c's inbound streams until c closes. At cleanup it
// closes c and joins its goroutines.
func serve(t testing.TB, c muxedConn) *server {
	s := &server{mux: mss.NewMultistreamMuxer[string](), conn: c}
	for _, p := range []string{echoProto, sinkProto, pingProto} {
		s.mux.AddHandler(p, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Go(func() {
		for {
			st, err := c.acceptStream(ctx)
			if err != nil {
				return // the connection closed or the test ended
			}
			s.wg.Go(func() {
				if err := s.handle(st); err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, err)
					s.mu.Unlock()
				}
			})
		}
	})
	t.Cleanup(s.stop)
	return s
}

// stop closes the connection, which ends the accept loop (go-libp2p's
// AcceptStream takes no context) and resets the handlers' streams, and waits
// for them all.
func (s *server) stop() {
	s.cancel()
	s.conn.close()
	s.wg.Wait()
}

// failures returns the handler errors so far.
func (s *server) failures() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

func (s *server) handle(st stream) error {
	proto, _, err := s.mux.Negotiate(st)
	if err != nil {
		st.Reset()
		if isReset(err) || errors.Is(err, io.EOF) {
			// The peer gave up after our na to a protocol we do not
			// speak, as a host does after proposing identify.
			return nil
		}
		return fmt.Errorf("negotiating: %w", err)
	}
	if err := handleProto(proto, st); err != nil {
		st.Reset()
		if proto == pingProto && isReset(err) {
			return nil // go-libp2p's ping client ends its stream with a reset
		}
		return fmt.Errorf("%s: %w", proto, err)
	}
	return st.Close()
}

// isReset reports whether err says the stream was reset, in either
// library's terms.
func isReset(err error) bool {
	return errors.Is(err, muxer.ErrStreamReset) || errors.Is(err, lpnetwork.ErrReset)
}

// handleProto runs the responder side of proto on a negotiated stream.
func handleProto(proto string, st stream) error {
	switch proto {
	case echoProto:
		if _, err := io.CopyBuffer(st, st, make([]byte, 32<<10)); err != nil {
			return err
		}
		return st.CloseWrite()
	case sinkProto:
		h := sha256.New()
		n, err := io.CopyBuffer(h, st, make([]byte, 256<<10))
		if err != nil {
			return err
		}
		msg := binary.BigEndian.AppendUint64(nil, uint64(n))
		if _, err := st.Write(h.Sum(msg)); err != nil {
			return err
		}
		return st.CloseWrite()
	case pingProto:
		buf := make([]byte, pingSize)
		for {
			if _, err := io.ReadFull(st, buf); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if _, err := st.Write(buf); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("no handler for %q", proto)
}

// openProto opens a stream on c and selects proto as the initiator. The
// stream is reset when ctx ends.
func openProto(ctx context.Context, c muxedConn, proto string) (stream, func() bool, error) {
	st, err := c.openStream(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("opening stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	if err := mss.SelectProtoOrFail(proto, st); err != nil {
		st.Reset()
		stop()
		return nil, nil, fmt.Errorf("selecting %s: %w", proto, err)
	}
	return st, stop, nil
}

// echoOn writes size random bytes on an echo stream, closes its write side
// and checks that the same bytes come back followed by EOF.
func echoOn(st stream, size int) error {
	want := make([]byte, size)
	rand.Read(want)
	werr := make(chan error, 1)
	go func() {
		if _, err := st.Write(want); err != nil {
			werr <- fmt.Errorf("writing: %w", err)
			return
		}
		werr <- st.CloseWrite()
	}()
	got, err := io.ReadAll(st)
	if err := <-werr; err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo: got %d bytes (%x...), want %d bytes (%x...)", len(got), head(got), len(want), head(want))
	}
	return st.Close()
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// sinkOn streams size pseudo-random bytes (seeded) on a sink stream and
// checks the responder's byte count and SHA-256 against the sender's.
func sinkOn(st stream, size int64, seed uint64) error {
	src := mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24)})
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < size; {
		chunk := buf[:min(int64(len(buf)), size-sent)]
		src.Read(chunk)
		h.Write(chunk)
		if _, err := st.Write(chunk); err != nil {
			return fmt.Errorf("writing at byte %d: %w", sent, err)
		}
		sent += int64(len(chunk))
	}
	if err := st.CloseWrite(); err != nil {
		return fmt.Errorf("closing write side: %w", err)
	}
	reply, err := io.ReadAll(st)
	if err != nil {
		return fmt.Errorf("reading the digest: %w", err)
	}
	want := h.Sum(binary.BigEndian.AppendUint64(nil, uint64(size)))
	if !bytes.Equal(reply, want) {
		return fmt.Errorf("sink reply: got %x, want %x (count %d then SHA-256)", reply, want, size)
	}
	return st.Close()
}

// pingOn runs count libp2p pings on a ping stream: 32 random bytes out, the
// same 32 back.
func pingOn(st stream, count int) error {
	out := make([]byte, pingSize)
	in := make([]byte, pingSize)
	for i := range count {
		rand.Read(out)
		if _, err := st.Write(out); err != nil {
			return fmt.Errorf("ping %d: writing: %w", i, err)
		}
		if _, err := io.ReadFull(st, in); err != nil {
			return fmt.Errorf("ping %d: reading: %w", i, err)
		}
		if !bytes.Equal(in, out) {
			return fmt.Errorf("ping %d: got %x, want %x", i, in, out)
		}
	}
	if err := st.CloseWrite(); err != nil {
		return err
	}
	return st.Close()
}

// runProto opens a stream on c for proto and runs fn on it.
func runProto(ctx context.Context, c muxedConn, proto string, fn func(stream) error) error {
	st, stop, err := openProto(ctx, c, proto)
	if err != nil {
		return err
	}
	defer stop()
	if err := fn(st); err != nil {
		st.Reset()
		return err
	}
	return nil
}
