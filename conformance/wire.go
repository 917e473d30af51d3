package conformance

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Spec constants (spec/multistream.md, spec/yamux.md).
const (
	mssHeader    = "/multistream/1.0.0"
	mssNA        = "na"
	mssMaxToken  = 1024 // bytes including the newline (multistream 2.5)
	simopenToken = "/libp2p/simultaneous-connect"

	yamuxID          = "/yamux/1.0.0"
	yamuxHeaderLen   = 12
	yamuxInitWindow  = 256 * 1024
	yamuxTypeData    = 0
	yamuxTypeWindow  = 1
	yamuxTypePing    = 2
	yamuxTypeGoAway  = 3
	yamuxFlagSYN     = 0x1
	yamuxFlagACK     = 0x2
	yamuxFlagFIN     = 0x4
	yamuxFlagRST     = 0x8
	yamuxGoAwayProto = 1
)

// errMalformed marks bytes that are not a multistream-select token.
var errMalformed = errors.New("conformance: malformed token")

// AppendToken appends the multistream-select token for body:
// uvarint(len(body)+1) ‖ body ‖ "\n" (multistream 2.1).
func AppendToken(b []byte, body string) []byte {
	b = binary.AppendUvarint(b, uint64(len(body)+1))
	b = append(b, body...)
	return append(b, '\n')
}

// Tokens encodes bodies as consecutive tokens.
func Tokens(bodies ...string) []byte {
	var b []byte
	for _, t := range bodies {
		b = AppendToken(b, t)
	}
	return b
}

// ReadToken reads one token strictly: minimal uvarint, at most 1024 bytes,
// trailing newline, UTF-8. It is the reader the suite judges peers with, so
// it must accept exactly what multistream 2.1–2.5 allow.
func ReadToken(r *bufio.Reader) (string, error) {
	var n uint64
	var shift uint
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		if i == 2 || (i == 1 && c == 0) {
			return "", fmt.Errorf("%w: length prefix not a minimal uvarint of at most 2 bytes", errMalformed)
		}
		n |= uint64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			break
		}
	}
	if n == 0 || n > mssMaxToken {
		return "", fmt.Errorf("%w: length %d", errMalformed, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	if buf[n-1] != '\n' {
		return "", fmt.Errorf("%w: no trailing newline", errMalformed)
	}
	if !utf8.Valid(buf[:n-1]) {
		return "", fmt.Errorf("%w: not UTF-8", errMalformed)
	}
	return string(buf[:n-1]), nil
}

// Frame is one yamux frame (yamux 1.1).
type Frame struct {
	Version byte
	Type    byte
	Flags   uint16
	Stream  uint32
	Length  uint32
	Data    []byte // data frames only; len(Data) == Length
}

// AppendFrame appends f's header and, for data frames, its payload.
func AppendFrame(b []byte, f Frame) []byte {
	b = append(b, f.Version, f.Type)
	b = binary.BigEndian.AppendUint16(b, f.Flags)
	b = binary.BigEndian.AppendUint32(b, f.Stream)
	b = binary.BigEndian.AppendUint32(b, f.Length)
	if f.Type == yamuxTypeData {
		b = append(b, f.Data...)
	}
	return b
}

// maxReadData bounds the payload ReadFrame buffers; longer data frames are
// discarded after the header (the suite only looks at headers of large frames).
const maxReadData = 1 << 20

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (Frame, error) {
	var h [yamuxHeaderLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Version: h[0], Type: h[1], Flags: binary.BigEndian.Uint16(h[2:]),
		Stream: binary.BigEndian.Uint32(h[4:]), Length: binary.BigEndian.Uint32(h[8:])}
	if f.Type == yamuxTypeData {
		if f.Length > maxReadData {
			_, err := io.CopyN(io.Discard, r, int64(f.Length))
			return f, err
		}
		f.Data = make([]byte, f.Length)
		if _, err := io.ReadFull(r, f.Data); err != nil {
			return Frame{}, err
		}
	}
	return f, nil
}

func (f Frame) String() string {
	types := []string{"data", "window_update", "ping", "go_away"}
	t := fmt.Sprintf("type %d", f.Type)
	if int(f.Type) < len(types) {
		t = types[f.Type]
	}
	return fmt.Sprintf("%s flags %s stream %d length %d", t, flagString(f.Flags), f.Stream, f.Length)
}

func flagString(fl uint16) string {
	s := ""
	for _, n := range []struct {
		bit  uint16
		name string
	}{{yamuxFlagSYN, "SYN"}, {yamuxFlagACK, "ACK"}, {yamuxFlagFIN, "FIN"}, {yamuxFlagRST, "RST"}} {
		if fl&n.bit != 0 {
			if s != "" {
				s += "|"
			}
			s += n.name
		}
	}
	if s == "" {
		return "0"
	}
	return s
}
