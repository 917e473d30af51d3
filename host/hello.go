package host

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// HelloProtocolID is the stream protocol on which Concord peers exchange
// their incarnation and connection sequence number right after an upgrade
// (spec/duplicates.md). Peers that do not speak it answer "na".
const HelloProtocolID = "/concord/hello/1.0.0"

// Hello message layout (spec/duplicates.md), 25 bytes:
//
//	+---------+------------------------+------------------------+
//	| version | incarnation (16 bytes) | sequence (uint64, BE)  |
//	|  0x01   |                        |                        |
//	+---------+------------------------+------------------------+
const (
	helloVersion = 0x01
	helloLen     = 1 + 16 + 8
)

// ErrMalformedHello reports a hello message that does not parse.
var ErrMalformedHello = errors.New("host: malformed hello message")

// ErrHelloTimeout: one half of the hello exchange did not finish within
// Config.HelloTimeout (HelloFailed).
var ErrHelloTimeout = errors.New("host: hello timed out")

// Incarnation identifies one run of a host process: random, drawn when the
// host is created. A peer that presents a new incarnation has restarted, so
// its connections with an older one are stale.
type Incarnation [16]byte

func (i Incarnation) String() string { return hex.EncodeToString(i[:4]) }

func newIncarnation(r io.Reader) (Incarnation, error) {
	if r == nil {
		r = rand.Reader
	}
	var i Incarnation
	if _, err := io.ReadFull(r, i[:]); err != nil {
		return i, fmt.Errorf("drawing incarnation: %w", err)
	}
	return i, nil
}

// hello is the message one side sends about one connection: its own
// incarnation and the sequence number it gave the connection (its count of
// connections to that peer, starting at 1).
type hello struct {
	Incarnation Incarnation
	Seq         uint64
}

func (h hello) marshal() []byte {
	b := make([]byte, helloLen)
	b[0] = helloVersion
	copy(b[1:17], h.Incarnation[:])
	binary.BigEndian.PutUint64(b[17:], h.Seq)
	return b
}

// parseHello parses exactly one hello message. Trailing bytes, another
// version or a zero sequence number are errors.
func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedHello, len(b), helloLen)
	}
	if b[0] != helloVersion {
		return h, fmt.Errorf("%w: version %d, want %d", ErrMalformedHello, b[0], helloVersion)
	}
	copy(h.Incarnation[:], b[1:17])
	h.Seq = binary.BigEndian.Uint64(b[17:])
	if h.Seq == 0 {
		return h, fmt.Errorf("%w: sequence number 0", ErrMalformedHello)
	}
	return h, nil
}

// readHello reads one hello message from r and expects EOF after it.
func readHello(r io.Reader) (hello, error) {
	buf := make([]byte, helloLen+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == nil:
		return hello{}, fmt.Errorf("%w: more than %d bytes", ErrMalformedHello, helloLen)
	case errors.Is(err, io.ErrUnexpectedEOF) && n == helloLen:
		return parseHello(buf[:n])
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return hello{}, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedHello, n, helloLen)
	}
	return hello{}, err
}
