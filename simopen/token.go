package simopen

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/multiformats/go-varint"
)

// Specification constants: the multistream-select tokens of the libp2p
// simopen draft (connections/simopen.md) and go-multistream v0.2.2–v0.4.1.
const (
	// ProtocolHeader opens every multistream-select exchange.
	ProtocolHeader = "/multistream/1.0.0"
	// ProtocolID is the token a dialer proposes first to announce the
	// simultaneous-open extension. A plain responder answers it with "na".
	ProtocolID = "/libp2p/simultaneous-connect"
	// TokenNA rejects a proposal.
	TokenNA = "na"
	// SelectPrefix precedes the decimal election number.
	SelectPrefix = "select:"
	// TokenInitiator is sent by the side whose number is larger.
	TokenInitiator = "initiator"
	// TokenResponder is sent by the side whose number is smaller.
	TokenResponder = "responder"
)

// Implementation constants.
const (
	// DefaultMaxTokenLen bounds a token, counting its trailing newline but
	// not its length prefix. It is go-multistream v0.6's limit, the
	// strictest among implementations.
	DefaultMaxTokenLen = 1024
	// minTokenLimit is the smallest MaxTokenLen allowed: the longest
	// token of the extension itself, /libp2p/simultaneous-connect with its
	// newline (select:<20 digits> is one byte shorter).
	minTokenLimit = len(ProtocolID) + 1
	// maxVarintLen is the longest minimal uvarint for a length up to
	// DefaultMaxTokenLen (1024 needs two bytes); a third byte can only
	// announce a longer token, which is rejected as soon as it is seen.
	maxVarintLen = 2
	// maxSelectDigits is the number of digits of the largest uint64.
	maxSelectDigits = 20
	// maxRejected bounds how many proposals the election's responder
	// answers with "na" before giving up: protocol lists are short, and
	// a peer that keeps proposing is stalling.
	maxRejected = 32
)

// appendToken appends tok framed as multistream-select frames it: a minimal
// uvarint of len(tok)+1, tok, and a newline.
func appendToken(dst []byte, tok string) []byte {
	dst = append(dst, varint.ToUvarint(uint64(len(tok)+1))...)
	dst = append(dst, tok...)
	return append(dst, '\n')
}

// encodeTokens frames toks back to back, the bytes of one write.
func encodeTokens(toks ...string) []byte {
	var b []byte
	for _, t := range toks {
		b = appendToken(b, t)
	}
	return b
}

// decoder extracts tokens from bytes pushed into it, strictly. It is the
// sans-IO counterpart of go-multistream's ReadNextToken, written here
// rather than reused because that reader (1) pulls from an io.Reader, so it
// cannot be fed bytes a caller already holds nor hand back bytes read past
// the last token, (2) accepts invalid UTF-8 and (3) reports a missing
// newline or an empty token with errors that can only be told apart by
// their text. The length prefix is checked as soon as it is complete, so a
// peer cannot make the decoder buffer more than maxTokenLen bytes plus one
// read's worth.
type decoder struct {
	max int    // largest token accepted, newline included
	buf []byte // received and not yet consumed
}

func newDecoder(max int) *decoder { return &decoder{max: max} }

// push appends bytes received from the peer.
func (d *decoder) push(p []byte) { d.buf = append(d.buf, p...) }

// rest returns the bytes received beyond the last token taken, which belong
// to whatever protocol follows.
func (d *decoder) rest() []byte { return d.buf }

// next returns the next complete token without its newline. ok is false,
// with a nil error, when more bytes are needed. After an error the decoder
// must not be used again.
func (d *decoder) next() (tok string, ok bool, err error) {
	n, vlen, err := readLength(d.buf)
	if err != nil || vlen == 0 {
		return "", false, err
	}
	if n == 0 {
		return "", false, fmt.Errorf("%w: empty token (length 0)", ErrMalformedToken)
	}
	if n > uint64(d.max) {
		return "", false, fmt.Errorf("%w: length %d exceeds the limit of %d", ErrMalformedToken, n, d.max)
	}
	end := vlen + int(n)
	if len(d.buf) < end {
		return "", false, nil
	}
	body := d.buf[vlen:end]
	if body[len(body)-1] != '\n' {
		return "", false, fmt.Errorf("%w: no trailing newline", ErrMalformedToken)
	}
	body = body[:len(body)-1]
	if !utf8.Valid(body) {
		return "", false, fmt.Errorf("%w: invalid UTF-8", ErrMalformedToken)
	}
	tok = string(body)
	d.buf = d.buf[end:]
	return tok, true, nil
}

// readLength decodes the uvarint length prefix at the start of b. vlen is
// 0 when b does not yet hold the whole prefix.
func readLength(b []byte) (n uint64, vlen int, err error) {
	for i := 0; i < len(b); i++ {
		if i == maxVarintLen {
			// A third length byte means a length of at least 2^14,
			// far beyond any limit.
			return 0, 0, fmt.Errorf("%w: length prefix longer than %d bytes", ErrMalformedToken, maxVarintLen)
		}
		if b[i] < 0x80 {
			n, vlen, err := varint.FromUvarint(b[:i+1])
			if err != nil {
				return 0, 0, fmt.Errorf("%w: length prefix: %w", ErrMalformedToken, err)
			}
			return n, vlen, nil
		}
	}
	return 0, 0, nil
}

// formatSelect renders an election number as its token.
func formatSelect(n uint64) string {
	return SelectPrefix + strconv.FormatUint(n, 10)
}

// parseSelect parses a "select:<n>" token. It accepts only the canonical
// base-10 form strconv.FormatUint produces, which is what every
// implementation sends: 1 to 20 ASCII digits, no leading zero unless the
// number is 0, no sign, no spaces, no underscores, at most 2^64-1. One
// number thus has exactly one encoding.
func parseSelect(tok string) (uint64, bool) {
	digits, ok := strings.CutPrefix(tok, SelectPrefix)
	if !ok || len(digits) == 0 || len(digits) > maxSelectDigits {
		return 0, false
	}
	if digits[0] == '0' && len(digits) > 1 {
		return 0, false
	}
	var n uint64
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, false // overflow
		}
		n = n*10 + d
	}
	return n, true
}
