package conformance

import (
	"bufio"
	"bytes"
	"testing"
	"time"
)

// FuzzReadToken: the reader never panics, and every token it accepts
// re-encodes to exactly the bytes it consumed.
func FuzzReadToken(f *testing.F) {
	f.Add(Tokens(mssHeader, noiseID))
	f.Add([]byte{0x87, 0x00, '/', 'n', 'o', 'i', 's', 'e', '\n'})
	f.Add([]byte{0x81, 0x08})
	f.Add([]byte{0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var consumed []byte
		for i := 0; i < 64; i++ {
			tok, err := ReadToken(r)
			if err != nil {
				return
			}
			consumed = AppendToken(consumed, tok)
			if !bytes.HasPrefix(b, consumed) {
				t.Fatalf("token %q re-encodes to %x, not a prefix of the input %x", tok, consumed, b)
			}
		}
	})
}

// FuzzReadFrame: decoding never panics and round-trips.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, Frame{Type: yamuxTypeData, Flags: yamuxFlagSYN, Stream: 1, Length: 2, Data: []byte("hi")}))
	f.Add(yamuxPing)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ReadFrame(bytes.NewReader(b))
		if err != nil || fr.Length > maxReadData {
			return
		}
		if got := AppendFrame(nil, fr); !bytes.HasPrefix(b, got) {
			t.Fatalf("frame %v re-encodes to %x, not a prefix of %x", fr, got, b)
		}
	})
}

// FuzzNoisePayload: the payload parser never panics on any payload or
// static key.
func FuzzNoisePayload(f *testing.F) {
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00, 0x22, 0x02, 0x12, 0x00}, make([]byte, 32))
	f.Fuzz(func(t *testing.T, b, static []byte) {
		_, _ = parseNoisePayload(b, static)
	})
}

// FuzzCertificate: the certificate check never panics.
func FuzzCertificate(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = peerFromCertificate([][]byte{b}, time.Unix(0, 0))
	})
}

// FuzzParseCase: case files are validated without panicking.
func FuzzParseCase(f *testing.F) {
	cases, err := caseFiles.ReadFile("cases/mss-select.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cases)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseCase(b)
	})
}
