package simopen

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDecoderSplitsAnywhere(t *testing.T) {
	wire := encodeTokens(ProtocolHeader, ProtocolID, "/noise")
	wire = append(wire, "rest"...)
	for cut := 0; cut <= len(wire); cut++ {
		d := newDecoder(DefaultMaxTokenLen)
		var got []string
		for _, part := range [][]byte{wire[:cut], wire[cut:]} {
			d.push(part)
			for {
				tok, ok, err := d.next()
				if err != nil {
					t.Fatalf("cut %d: %v", cut, err)
				}
				if !ok {
					break
				}
				got = append(got, tok)
			}
		}
		if want := []string{ProtocolHeader, ProtocolID, "/noise"}; strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("cut %d: tokens %q, want %q", cut, got, want)
		}
		if string(d.rest()) != "rest" {
			t.Errorf("cut %d: rest %q, want %q", cut, d.rest(), "rest")
		}
	}
}

func TestDecoderLimits(t *testing.T) {
	max := string(bytes.Repeat([]byte{'x'}, DefaultMaxTokenLen-1))
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"largest", encodeTokens(max), true},
		{"one-byte", encodeTokens(""), true}, // just "\n": an empty token, allowed by framing
		{"too-long", encodeTokens(max + "x"), false},
		{"zero-length", []byte{0}, false},
		{"non-minimal", []byte{0x81, 0x00, '\n'}, false},
		{"three-byte-prefix", []byte{0x80, 0x80, 0x01}, false},
		{"no-newline", []byte{2, 'a', 'b'}, false},
		{"bad-utf8", []byte{2, 0xc3, '\n'}, false},
	} {
		d := newDecoder(DefaultMaxTokenLen)
		d.push(tc.in)
		_, ok, err := d.next()
		if tc.ok && (!ok || err != nil) {
			t.Errorf("%s: ok %v err %v, want a token", tc.name, ok, err)
		}
		if !tc.ok && !errors.Is(err, ErrMalformedToken) {
			t.Errorf("%s: ok %v err %v, want ErrMalformedToken", tc.name, ok, err)
		}
	}
	// An oversized length is refused before its body arrives.
	d := newDecoder(16)
	d.push([]byte{18})
	if _, _, err := d.next(); !errors.Is(err, ErrMalformedToken) {
		t.Errorf("length 18 with limit 16: err %v, want ErrMalformedToken before the body", err)
	}
}

func TestParseSelect(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"select:0", 0, true}, {"select:7", 7, true}, {"select:18446744073709551615", 1<<64 - 1, true},
		{"select:18446744073709551616", 0, false}, {"select:99999999999999999999", 0, false},
		{"select:", 0, false}, {"select:01", 0, false}, {"select:00", 0, false}, {"select:-1", 0, false},
		{"select:+1", 0, false}, {"select: 1", 0, false}, {"select:1 ", 0, false}, {"select:1_0", 0, false},
		{"select:0x1", 0, false}, {"Select:1", 0, false}, {"1", 0, false}, {"select:１", 0, false},
	} {
		got, ok := parseSelect(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseSelect(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseSelect checks parseSelect against the canonical form: it
// accepts exactly the strings that strconv.FormatUint produces.
func FuzzParseSelect(f *testing.F) {
	for _, s := range []string{"select:0", "select:18446744073709551615", "select:18446744073709551616", "select:01", "select:+1", "select:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseSelect(s)
		digits, hasPrefix := strings.CutPrefix(s, SelectPrefix)
		ref, err := strconv.ParseUint(digits, 10, 64)
		canonical := hasPrefix && err == nil && strconv.FormatUint(ref, 10) == digits
		if ok != canonical {
			t.Fatalf("parseSelect(%q) ok = %v, want %v", s, ok, canonical)
		}
		if ok && (n != ref || formatSelect(n) != s) {
			t.Fatalf("parseSelect(%q) = %d; round trip %q", s, n, formatSelect(n))
		}
	})
}

// FuzzDecoder feeds arbitrary bytes, split at an arbitrary point, and
// checks the decoder's invariants: every token is valid UTF-8 without its
// newline and within the limit, re-encoding the tokens and appending the
// rest gives back the input's consumed prefix, the buffer stays bounded,
// and an error is always ErrMalformedToken.
func FuzzDecoder(f *testing.F) {
	f.Add(encodeTokens(ProtocolHeader, ProtocolID, "/noise"), uint(5), uint16(64))
	f.Add([]byte{0x81, 0x08}, uint(1), uint16(1024))
	f.Add([]byte{0x93, 0x00}, uint(0), uint16(1024))
	f.Fuzz(func(t *testing.T, in []byte, cut uint, limit uint16) {
		max := int(limit)%DefaultMaxTokenLen + 1
		d := newDecoder(max)
		if cut > uint(len(in)) {
			cut = uint(len(in))
		}
		var toks []string
		var err error
	feed:
		for _, part := range [][]byte{in[:cut], in[cut:]} {
			d.push(part)
			for {
				var tok string
				var ok bool
				tok, ok, err = d.next()
				if err != nil {
					break feed
				}
				if !ok {
					break
				}
				if !utf8.ValidString(tok) || len(tok)+1 > max {
					t.Fatalf("token %q: invalid or over the limit %d", tok, max)
				}
				toks = append(toks, tok)
			}
			if len(d.buf) > max+maxVarintLen+len(part) {
				t.Fatalf("buffer of %d bytes with limit %d", len(d.buf), max)
			}
		}
		if err != nil && !errors.Is(err, ErrMalformedToken) {
			t.Fatalf("error %v is not ErrMalformedToken", err)
		}
		if err == nil {
			re := append(encodeTokens(toks...), d.rest()...)
			if !bytes.Equal(re, in) {
				t.Fatalf("tokens %q + rest %q re-encode to %q, input %q", toks, d.rest(), re, in)
			}
		}
	})
}
