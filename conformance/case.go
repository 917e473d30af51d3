package conformance

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// A Case is one conformance check: a script of steps the runner plays
// against the target, over one TCP connection. Cases are data: the files in
// cases/, one per case, embedded in the package.
type Case struct {
	// ID names the case, e.g. "mss-oversize"; it is the file name without
	// ".json".
	ID string `json:"id"`
	// Rule is the spec rule the case checks, e.g. "multistream 2.5" (the
	// documents in spec/).
	Rule string `json:"rule"`
	// Mode is "dial" (the runner dials the target; the default) or "listen"
	// (the target dials the runner).
	Mode string `json:"mode,omitempty"`
	// Summary says what the runner does, Expect what the rule requires.
	Summary string `json:"summary"`
	Expect  string `json:"expect"`
	Steps   []Step `json:"steps"`
}

// A Step is one action or check; exactly one field is set. Strings in send
// and read steps may name variables saved by earlier steps as {name}.
type Step struct {
	// Send writes bytes in one write: Hex, then Tokens (each framed as a
	// multistream-select token), then Zeros zero bytes. On a secured
	// connection they are encrypted unless Raw.
	Send *SendStep `json:"send,omitempty"`
	// Read reads one token and checks it.
	Read *ReadStep `json:"read,omitempty"`
	// End requires the target to close the connection within a deadline,
	// having sent at most the tokens in Allow first.
	End *EndStep `json:"end,omitempty"`
	// Trickle sends bytes one at a time and requires the target to close
	// the connection within the stage deadline.
	Trickle *TrickleStep `json:"trickle,omitempty"`
	// Select negotiates a protocol with multistream-select as initiator;
	// "na" makes the case not applicable.
	Select *SelectStep `json:"select,omitempty"`
	// Serve answers proposals as a multistream-select responder: na to
	// each until the target proposes Protocol, which it echoes.
	Serve *SelectStep `json:"serve,omitempty"`
	// Noise runs a Noise XX handshake (possibly mutated).
	Noise *NoiseStep `json:"noise,omitempty"`
	// TLS runs a TLS 1.3 client handshake (possibly mutated).
	TLS *TLSStep `json:"tls,omitempty"`
	// Yamux makes sure yamux is the muxer: inlined in the handshake, or
	// selected with multistream-select on the secured connection.
	Yamux *struct{} `json:"yamux,omitempty"`
	// Frame sends yamux frames; ExpectFrame reads until one matches.
	Frame       *FrameStep       `json:"frame,omitempty"`
	ExpectFrame *ExpectFrameStep `json:"expect_frame,omitempty"`
	// Election finishes a simultaneous-open election (spec/simopen.md 3.3)
	// whose opening tokens earlier steps exchanged, then secures the
	// connection with Noise in the role the election gave.
	Election *ElectionStep `json:"election,omitempty"`
}

type SendStep struct {
	Hex    string   `json:"hex,omitempty"`
	Tokens []string `json:"tokens,omitempty"`
	Zeros  int      `json:"zeros,omitempty"`
	Raw    bool     `json:"raw,omitempty"`
}

type ReadStep struct {
	// Token is the exact body expected; Prefix a prefix of it; with
	// neither any token is accepted. Save stores the body (after Prefix)
	// as a variable.
	Token  string `json:"token,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Save   string `json:"save,omitempty"`
	// Otherwise, if set, makes another token end the case as not
	// applicable for this reason (the target lacks an optional
	// extension), instead of failing it.
	Otherwise string `json:"otherwise,omitempty"`
}

type EndStep struct {
	// Allow lists tokens the target may send before it closes ("*": any
	// token). On a secured connection any data is allowed.
	Allow []string `json:"allow,omitempty"`
	// Within is "answer" (the default: the answer deadline) or "stage" (the
	// stage deadline, for rules about time limits).
	Within string `json:"within,omitempty"`
}

type TrickleStep struct {
	Tokens   []string `json:"tokens"`
	Interval string   `json:"interval"`
}

type SelectStep struct {
	Protocol string `json:"protocol"`
	// Lazy sends the header and the proposal without waiting; the answers
	// are read before the next read of the connection (multistream 3.5).
	Lazy bool `json:"lazy,omitempty"`
}

type NoiseStep struct {
	// Role is "initiator" (default) or "responder".
	Role string `json:"role,omitempty"`
	// Mutate is one of the payload mutations ("bad-signature",
	// "sig-without-prefix", "unknown-fields") or a framing one
	// ("truncated-message-1": 16 bytes instead of the 32-byte key).
	Mutate string `json:"mutate,omitempty"`
	// Identity "other" presents a fresh identity key instead of the
	// runner's (the target dialed the runner's peer ID).
	Identity string `json:"identity,omitempty"`
	// Muxers offered in the payload; absent means ["/yamux/1.0.0"].
	Muxers *[]string `json:"muxers,omitempty"`
	// Expect is "ok" (the handshake completes and the target keeps the
	// connection) or "refused" (the target closes the connection).
	Expect string `json:"expect"`
	// Muxer, if set, is the muxer the handshake must agree ("" for
	// none is not expressible; leave it out).
	Muxer string `json:"muxer,omitempty"`
}

type TLSStep struct {
	// Role is "client" (the default) or "server" (the target dialed).
	Role string `json:"role,omitempty"`
	// Identity "other" presents a fresh identity key instead of the
	// runner's (the target dialed the runner's peer ID).
	Identity string `json:"identity,omitempty"`
	// Mutate is one of the certificate mutations: "no-extension",
	// "bad-extension-signature", "expired", "unknown-critical-extension".
	Mutate string `json:"mutate,omitempty"`
	// ALPN offered; absent means ["/yamux/1.0.0", "libp2p"], empty none.
	ALPN *[]string `json:"alpn,omitempty"`
	// Expect is "ok", "refused", or "either" where the spec does not
	// decide (the outcome is recorded, the case passes).
	Expect string `json:"expect"`
	// Muxer, if set, is the ALPN protocol the server must select.
	Muxer string `json:"muxer,omitempty"`
}

type FrameStep struct {
	Type   string   `json:"type"`
	Flags  []string `json:"flags,omitempty"`
	Stream uint32   `json:"stream,omitempty"`
	// Length of a non-data frame (window delta, ping value, go-away
	// code). A data frame's length is that of its payload: Tokens then
	// Zeros.
	Length uint32   `json:"length,omitempty"`
	Tokens []string `json:"tokens,omitempty"`
	Zeros  int      `json:"zeros,omitempty"`
	// Repeat sends the frame this many times in one write (default 1);
	// the ping value or window delta grows by one each time.
	Repeat int `json:"repeat,omitempty"`
}

type FrameMatch struct {
	Type   string   `json:"type"`
	Flags  []string `json:"flags,omitempty"`
	Stream *uint32  `json:"stream,omitempty"`
	Length *uint32  `json:"length,omitempty"`
}

type ExpectFrameStep struct {
	AnyOf []FrameMatch `json:"any_of"`
	// OrEnd also accepts the target closing the connection.
	OrEnd bool `json:"or_end,omitempty"`
	// Resend, if set, is a frame sent again every 100 ms while waiting
	// (a ping the target may drop under load).
	Resend *FrameStep `json:"resend,omitempty"`
}

type ElectionStep struct {
	// Number is the runner's election number: "max" (2^64-1: the runner
	// wins), "0" (it loses) or "tie" (the target's own number).
	Number string `json:"number"`
}

//go:embed cases/*.json
var caseFiles embed.FS

// Builtin returns the cases shipped with the package, sorted by ID.
func Builtin() ([]Case, error) {
	names, err := fs.Glob(caseFiles, "cases/*.json")
	if err != nil {
		return nil, err
	}
	var out []Case
	for _, name := range names {
		b, err := caseFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		c, err := ParseCase(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if want := strings.TrimSuffix(path.Base(name), ".json"); c.ID != want {
			return nil, fmt.Errorf("%s: id %q, want %q", name, c.ID, want)
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ParseCase decodes and validates one case file. Unknown fields are errors,
// so a misspelt step is not silently skipped.
func ParseCase(b []byte) (Case, error) {
	var c Case
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, err
	}
	return c, c.validate()
}

func (c Case) validate() error {
	if c.ID == "" || c.Rule == "" || c.Expect == "" {
		return fmt.Errorf("case needs id, rule and expect")
	}
	if c.Mode != "" && c.Mode != "dial" && c.Mode != "listen" {
		return fmt.Errorf("mode %q: want dial or listen", c.Mode)
	}
	if len(c.Steps) == 0 || len(c.Steps) > 64 {
		return fmt.Errorf("%d steps: want 1 to 64", len(c.Steps))
	}
	for i, s := range c.Steps {
		n := 0
		for _, set := range []bool{s.Send != nil, s.Read != nil, s.End != nil, s.Trickle != nil, s.Select != nil, s.Serve != nil,
			s.Noise != nil, s.TLS != nil, s.Yamux != nil, s.Frame != nil, s.ExpectFrame != nil, s.Election != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("step %d: %d actions, want exactly 1", i+1, n)
		}
		if s.Frame != nil {
			if _, ok := frameTypes[s.Frame.Type]; !ok {
				return fmt.Errorf("step %d: frame type %q", i+1, s.Frame.Type)
			}
			if _, err := parseFlags(s.Frame.Flags); err != nil {
				return fmt.Errorf("step %d: %w", i+1, err)
			}
			if s.Frame.Repeat < 0 || s.Frame.Repeat > 100000 {
				return fmt.Errorf("step %d: repeat %d out of [0, 100000]", i+1, s.Frame.Repeat)
			}
		}
		if s.ExpectFrame != nil {
			for _, m := range s.ExpectFrame.AnyOf {
				if _, ok := frameTypes[m.Type]; !ok {
					return fmt.Errorf("step %d: frame type %q", i+1, m.Type)
				}
				if _, err := parseFlags(m.Flags); err != nil {
					return fmt.Errorf("step %d: %w", i+1, err)
				}
			}
		}
		if s.Noise != nil && s.Noise.Expect != "ok" && s.Noise.Expect != "refused" {
			return fmt.Errorf("step %d: noise expect %q: want ok or refused", i+1, s.Noise.Expect)
		}
		if s.TLS != nil && s.TLS.Role != "" && s.TLS.Role != "client" && s.TLS.Role != "server" {
			return fmt.Errorf("step %d: tls role %q: want client or server", i+1, s.TLS.Role)
		}
		if s.TLS != nil && s.TLS.Expect != "ok" && s.TLS.Expect != "refused" && s.TLS.Expect != "either" {
			return fmt.Errorf("step %d: tls expect %q: want ok, refused or either", i+1, s.TLS.Expect)
		}
		if s.Election != nil && s.Election.Number != "max" && s.Election.Number != "0" && s.Election.Number != "tie" {
			return fmt.Errorf("step %d: election number %q: want max, 0 or tie", i+1, s.Election.Number)
		}
	}
	return nil
}

var frameTypes = map[string]byte{"data": yamuxTypeData, "window_update": yamuxTypeWindow, "ping": yamuxTypePing, "go_away": yamuxTypeGoAway}

func parseFlags(names []string) (uint16, error) {
	var f uint16
	for _, n := range names {
		switch n {
		case "SYN":
			f |= yamuxFlagSYN
		case "ACK":
			f |= yamuxFlagACK
		case "FIN":
			f |= yamuxFlagFIN
		case "RST":
			f |= yamuxFlagRST
		default:
			return 0, fmt.Errorf("flag %q: want SYN, ACK, FIN or RST", n)
		}
	}
	return f, nil
}
