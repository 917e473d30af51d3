package yamux

import (
	"encoding/binary"
	"io"
	"testing"
)

// Yamux frame types and flags (spec.md), for tests that play a raw peer.
const (
	typeData         = 0
	typeWindowUpdate = 1
	typePing         = 2
	typeGoAway       = 3

	flagSYN = 1
	flagACK = 2
	flagFIN = 4
	flagRST = 8
)

type frameHeader struct {
	version  uint8
	typ      uint8
	flags    uint16
	streamID uint32
	length   uint32
}

// encodeFrame is a 12-byte header: version, type, flags, stream ID,
// length, big endian.
func encodeFrame(typ uint8, flags uint16, streamID, length uint32) []byte {
	b := make([]byte, headerSize)
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint32(b[4:], streamID)
	binary.BigEndian.PutUint32(b[8:], length)
	return b
}

// readFrame reads one frame from r and skips a data frame's payload.
func readFrame(t testing.TB, r io.Reader) frameHeader {
	t.Helper()
	b := make([]byte, headerSize)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("reading frame header: %v", err)
	}
	h := frameHeader{
		version:  b[0],
		typ:      b[1],
		flags:    binary.BigEndian.Uint16(b[2:]),
		streamID: binary.BigEndian.Uint32(b[4:]),
		length:   binary.BigEndian.Uint32(b[8:]),
	}
	if h.typ == typeData && h.length > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(h.length)); err != nil {
			t.Fatalf("reading %d payload bytes: %v", h.length, err)
		}
	}
	return h
}
