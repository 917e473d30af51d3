package simopen

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen/simopentest"
)

// The vectors in spec/vectors/simopen are written from the table below by
// `go test ./simopen -run TestVectorFiles -update`; the format is
// described in spec/vectors/simopen/README.md. The expected bytes in the
// table are spelled out from the wire format (encodeTokens of literal
// tokens), not produced by running the machine, so replaying them tests
// the implementation against the spec.
var update = flag.Bool("update", false, "rewrite spec/vectors/simopen from the table in vectors_test.go")

const vectorDir = "../spec/vectors/simopen"

type vecSide struct {
	// Mode is "dial" (Dial), "accept" (Accept) or "script" (fixed bytes,
	// not an implementation under test).
	Mode       string   `json:"mode"`
	Protocols  []string `json:"protocols,omitempty"`
	LocalPeer  string   `json:"local_peer,omitempty"`  // hex of the binary peer ID
	RemotePeer string   `json:"remote_peer,omitempty"` // hex; absent when unknown
	Nonce      string   `json:"nonce,omitempty"`       // decimal uint64 election number
}

type vecEntry struct {
	From string `json:"from"`
	// Hex is the bytes of one Write, or with Pipelined the bytes held
	// back to go out with the first security handshake write. Close
	// means the sender closed the connection (the receiver reads EOF).
	Hex       string `json:"hex,omitempty"`
	Text      string `json:"text,omitempty"` // informative: Hex in Go escapes, without quotes
	Pipelined bool   `json:"pipelined,omitempty"`
	Close     bool   `json:"close,omitempty"`
}

type vecElection struct {
	Local    string `json:"local"`
	Remote   string `json:"remote"`
	TieBreak bool   `json:"tie_break"`
}

type vecExpect struct {
	Role      string       `json:"role,omitempty"`
	Protocol  string       `json:"protocol,omitempty"`
	Election  *vecElection `json:"election,omitempty"`
	Pipelined bool         `json:"pipelined,omitempty"`
	// Error is "protocol", "malformed", "tie", "no-common-protocol", "eof"
	// or "peer-without-simopen".
	Error string `json:"error,omitempty"`
	// Got is the offending token of a protocol error; Expected describes
	// what was due (informative).
	Got      string `json:"got,omitempty"`
	Expected string `json:"expected,omitempty"`
}

type vector struct {
	Name        string               `json:"name"`
	Description string               `json:"description"`
	A           vecSide              `json:"a"`
	B           vecSide              `json:"b"`
	Transcript  []vecEntry           `json:"transcript"`
	Expect      map[string]vecExpect `json:"expect"`
}

// Fixed identities and numbers of the vectors.
var (
	vecPeerHigh = "00240801122094f9d5c4b36c40a2d8e0f2c7a5b3e1d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a"
	vecPeerLow  = "0024080112201a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"
)

const (
	nonceA uint64 = 16045690984503098046 // 0xdeadbeefdeadbeef-ish, A's number
	nonceB uint64 = 1234567890123456789
)

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func w(from string, toks ...string) vecEntry {
	return vecEntry{From: from, Hex: hex.EncodeToString(encodeTokens(toks...))}
}

func held(from string, toks ...string) vecEntry {
	e := w(from, toks...)
	e.Pipelined = true
	return e
}

func raw(from string, b string) vecEntry {
	return vecEntry{From: from, Hex: hex.EncodeToString([]byte(b))}
}

func closed(from string) vecEntry { return vecEntry{From: from, Close: true} }

func dialSide(nonce uint64, protos ...string) vecSide {
	return vecSide{Mode: "dial", Protocols: protos, Nonce: u(nonce)}
}

func ok(role, proto string) vecExpect { return vecExpect{Role: role, Protocol: proto} }

func elected(role, proto string, local, remote uint64, tieBreak, pipelined bool) vecExpect {
	return vecExpect{Role: role, Protocol: proto, Pipelined: pipelined,
		Election: &vecElection{Local: u(local), Remote: u(remote), TieBreak: tieBreak}}
}

func protoErr(expected, got string) vecExpect {
	return vecExpect{Error: "protocol", Expected: expected, Got: got}
}

const (
	H  = ProtocolHeader
	SO = ProtocolID
)

// vectorTable is the source of the vector files.
func vectorTable() []vector {
	noise, tls := "/noise", "/tls/1.0.0"
	sel := func(n uint64) string { return formatSelect(n) }
	// electionPrefix is the opening of an election with both sides
	// proposing pa and pb first.
	electionPrefix := func(pa, pb string) []vecEntry {
		return []vecEntry{w("a", H, SO, pa), w("b", H, SO, pb), w("a", sel(nonceA)), w("b", sel(nonceB))}
	}
	vs := []vector{
		{
			Name:        "single-dialer-plain-responder",
			Description: "A dialed, B accepted (plain multistream-select responder): B answers na to the simopen token and accepts A's pipelined proposal; no extra round trip.",
			A:           dialSide(nonceA, noise, tls), B: vecSide{Mode: "accept", Protocols: []string{tls, noise}},
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H), w("b", TokenNA), w("b", noise)},
			Expect:     map[string]vecExpect{"a": ok("initiator", noise), "b": ok("responder", noise)},
		},
		{
			Name:        "single-dialer-second-choice",
			Description: "B refuses A's first proposal; A goes on with its next one, as in multistream-select.",
			A:           dialSide(nonceA, "/unknown/1.0.0", noise), B: vecSide{Mode: "accept", Protocols: []string{noise}},
			Transcript: []vecEntry{w("a", H, SO, "/unknown/1.0.0"), w("b", H), w("b", TokenNA), w("b", TokenNA), w("a", noise), w("b", noise)},
			Expect:     map[string]vecExpect{"a": ok("initiator", noise), "b": ok("responder", noise)},
		},
		{
			Name:        "single-dialer-no-common-protocol",
			Description: "B refuses every proposal of A.",
			A:           dialSide(nonceA, "/unknown/1.0.0"), B: vecSide{Mode: "script"},
			Transcript: []vecEntry{w("a", H, SO, "/unknown/1.0.0"), w("b", H), w("b", TokenNA), w("b", TokenNA)},
			Expect:     map[string]vecExpect{"a": {Error: "no-common-protocol"}},
		},
		{
			Name:        "election-a-larger-pipelined",
			Description: "Both dialed (TCP simultaneous open) and proposed the same protocol first. A's number is larger: A initiates and holds 'initiator' and its proposal back to send them with its first handshake message.",
			A:           dialSide(nonceA, noise, tls), B: dialSide(nonceB, noise, tls),
			Transcript: append(electionPrefix(noise, noise), held("a", TokenInitiator, noise), w("b", TokenResponder), w("b", noise)),
			Expect: map[string]vecExpect{
				"a": elected("initiator", noise, nonceA, nonceB, false, true),
				"b": elected("responder", noise, nonceB, nonceA, false, false),
			},
		},
		{
			Name:        "election-b-larger-pipelined",
			Description: "As election-a-larger-pipelined with the numbers swapped: B initiates.",
			A:           dialSide(nonceB, noise, tls), B: dialSide(nonceA, noise, tls),
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H, SO, noise), w("a", sel(nonceB)), w("b", sel(nonceA)),
				w("a", TokenResponder), held("b", TokenInitiator, noise), w("a", noise)},
			Expect: map[string]vecExpect{
				"a": elected("responder", noise, nonceB, nonceA, false, false),
				"b": elected("initiator", noise, nonceA, nonceB, false, true),
			},
		},
		{
			Name:        "election-a-larger-sync",
			Description: "Both dialed with different first proposals. A initiates and sends 'initiator' and its proposal in one write, then waits for B's answer.",
			A:           dialSide(nonceA, noise, tls), B: dialSide(nonceB, tls, noise),
			Transcript: append(electionPrefix(noise, tls), w("a", TokenInitiator, noise), w("b", TokenResponder), w("b", noise)),
			Expect: map[string]vecExpect{
				"a": elected("initiator", noise, nonceA, nonceB, false, false),
				"b": elected("responder", noise, nonceB, nonceA, false, false),
			},
		},
		{
			Name:        "election-b-larger-sync",
			Description: "Both dialed with different first proposals; B's number is larger, so B's first choice wins.",
			A:           dialSide(nonceB, noise, tls), B: dialSide(nonceA, tls, noise),
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H, SO, tls), w("a", sel(nonceB)), w("b", sel(nonceA)),
				w("a", TokenResponder), w("b", TokenInitiator, tls), w("a", tls)},
			Expect: map[string]vecExpect{
				"a": elected("responder", tls, nonceB, nonceA, false, false),
				"b": elected("initiator", tls, nonceA, nonceB, false, false),
			},
		},
		{
			Name:        "election-initiator-second-choice",
			Description: "The election initiator's first proposal is refused; it goes on with its next one.",
			A:           dialSide(nonceA, "/unknown/1.0.0", noise), B: dialSide(nonceB, noise),
			Transcript: append(electionPrefix("/unknown/1.0.0", noise), w("a", TokenInitiator, "/unknown/1.0.0"),
				w("b", TokenResponder), w("b", TokenNA), w("a", noise), w("b", noise)),
			Expect: map[string]vecExpect{
				"a": elected("initiator", noise, nonceA, nonceB, false, false),
				"b": elected("responder", noise, nonceB, nonceA, false, false),
			},
		},
		{
			Name:        "election-no-common-protocol",
			Description: "The election responder refuses the initiator's only proposal; the initiator gives up and closes.",
			A:           dialSide(nonceA, "/unknown/1.0.0"), B: dialSide(nonceB, noise),
			Transcript: append(electionPrefix("/unknown/1.0.0", noise), w("a", TokenInitiator, "/unknown/1.0.0"),
				w("b", TokenResponder), w("b", TokenNA), closed("a")),
			Expect: map[string]vecExpect{"a": {Error: "no-common-protocol"}, "b": {Error: "no-common-protocol"}},
		},
		{
			Name:        "election-extreme-numbers",
			Description: "Numbers 0 and 2^64-1 are valid; the larger initiates.",
			A:           dialSide(0, noise), B: dialSide(^uint64(0), noise),
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H, SO, noise), w("a", sel(0)), w("b", sel(^uint64(0))),
				w("a", TokenResponder), held("b", TokenInitiator, noise), w("a", noise)},
			Expect: map[string]vecExpect{
				"a": elected("responder", noise, 0, ^uint64(0), false, false),
				"b": elected("initiator", noise, ^uint64(0), 0, false, true),
			},
		},
		{
			Name:        "tie-broken-by-peer-id",
			Description: "Equal numbers; both dialed, so both know both peer IDs: the larger peer ID (bytewise, binary multihash) initiates. B's ID is the larger here.",
			A:           vecSide{Mode: "dial", Protocols: []string{noise}, Nonce: u(nonceB), LocalPeer: vecPeerLow, RemotePeer: vecPeerHigh},
			B:           vecSide{Mode: "dial", Protocols: []string{noise}, Nonce: u(nonceB), LocalPeer: vecPeerHigh, RemotePeer: vecPeerLow},
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H, SO, noise), w("a", sel(nonceB)), w("b", sel(nonceB)),
				w("a", TokenResponder), held("b", TokenInitiator, noise), w("a", noise)},
			Expect: map[string]vecExpect{
				"a": elected("responder", noise, nonceB, nonceB, true, false),
				"b": elected("initiator", noise, nonceB, nonceB, true, true),
			},
		},
		{
			Name:        "tie-without-peer-ids",
			Description: "Equal numbers and the remote peer IDs are unknown: both fail with the retryable tie error.",
			A:           vecSide{Mode: "dial", Protocols: []string{noise}, Nonce: u(nonceB), LocalPeer: vecPeerLow},
			B:           vecSide{Mode: "dial", Protocols: []string{noise}, Nonce: u(nonceB), LocalPeer: vecPeerHigh},
			Transcript:  []vecEntry{w("a", H, SO, noise), w("b", H, SO, noise), w("a", sel(nonceB)), w("b", sel(nonceB))},
			Expect:      map[string]vecExpect{"a": {Error: "tie"}, "b": {Error: "tie"}},
		},
		{
			Name:        "crossing-peer-without-extension",
			Description: "B dialed too but does not speak the extension (go-libp2p, js-libp2p): its proposal comes where na or the simopen token is due. A fails at once with the retryable peer-without-simopen error and redials.",
			A:           dialSide(nonceA, noise), B: vecSide{Mode: "script"},
			Transcript: []vecEntry{w("a", H, SO, noise), w("b", H, noise)},
			Expect:     map[string]vecExpect{"a": {Error: "peer-without-simopen", Got: noise}},
		},
	}

	// Malformed peers: A is Concord's dialer, B sends fixed bytes.
	bad := func(name, desc string, after []vecEntry, want vecExpect) vector {
		return vector{
			Name: "malformed-" + name, Description: desc,
			A: dialSide(nonceA, noise), B: vecSide{Mode: "script"},
			Transcript: append([]vecEntry{w("a", H, SO, noise)}, after...),
			Expect:     map[string]vecExpect{"a": want},
		}
	}
	elect := []vecEntry{w("b", H, SO, tls), w("a", sel(nonceA))}
	malformed := vecExpect{Error: "malformed"}
	vs = append(vs,
		bad("header", "B speaks another multistream version.",
			[]vecEntry{w("b", "/multistream/2.0.0")}, protoErr(quote(H), "/multistream/2.0.0")),
		bad("echo-mismatch", "B answers A's proposal with another protocol.",
			[]vecEntry{w("b", H, TokenNA, tls)}, protoErr(`"/noise" or "na"`, tls)),
		bad("select-missing", "After the skipped proposal, B sends 'initiator' where select:<n> is due.",
			append(elect, w("b", TokenInitiator)), protoErr(`"select:<decimal uint64>"`, TokenInitiator)),
		bad("expected-responder", "A's number is larger, yet B sends 'initiator' too.",
			append(elect, w("b", sel(1)), w("a", TokenInitiator, noise), w("b", TokenInitiator)),
			protoErr(quote(TokenResponder), TokenInitiator)),
		bad("expected-initiator", "B's number is larger, yet B sends 'responder'.",
			append(elect, w("b", sel(^uint64(0))), w("a", TokenResponder), w("b", TokenResponder)),
			protoErr(quote(TokenInitiator), TokenResponder)),
		bad("pipelined-refusal", "B proposed /noise itself, then refuses A's pipelined /noise.",
			[]vecEntry{w("b", H, SO, noise), w("a", sel(nonceA)), w("b", sel(1)), held("a", TokenInitiator, noise),
				w("b", TokenResponder), w("b", TokenNA)},
			protoErr(`"/noise" (the peer proposed it)`, TokenNA)),
		bad("token-too-long", "A length prefix of 1025, one more than the limit.",
			[]vecEntry{raw("b", "\x81\x08")}, malformed),
		bad("non-minimal-length", "The length 19 encoded in two bytes (0x93 0x00).",
			[]vecEntry{raw("b", "\x93\x00"+H+"\n")}, malformed),
		bad("long-length-prefix", "A three-byte length prefix.",
			[]vecEntry{raw("b", "\x80\x80\x01")}, malformed),
		bad("missing-newline", "A token whose last byte is not a newline.",
			[]vecEntry{raw("b", "\x13"+H+"X")}, malformed),
		bad("empty-token", "A zero length prefix.",
			[]vecEntry{raw("b", "\x00")}, malformed),
		bad("invalid-utf8", "A token that is not UTF-8.",
			[]vecEntry{raw("b", "\x03\xff\xfe\n")}, malformed),
		bad("eof", "B closes before answering.",
			[]vecEntry{w("b", H), closed("b")}, vecExpect{Error: "eof"}),
	)
	for _, s := range []struct{ name, tok string }{
		{"negative", "select:-1"}, {"plus", "select:+1"}, {"space", "select: 1"}, {"trailing-space", "select:1 "},
		{"leading-zero", "select:01"}, {"overflow", "select:18446744073709551616"}, {"empty", "select:"},
		{"junk", "select:1x"}, {"hex", "select:0x10"}, {"underscore", "select:1_000"}, {"uppercase-prefix", "SELECT:1"},
		{"twenty-one-digits", "select:000000000000000000001"},
	} {
		vs = append(vs, bad("select-"+s.name, fmt.Sprintf("B's election number %q is not canonical base-10 uint64.", s.tok),
			append(elect, w("b", s.tok)), protoErr(`"select:<decimal uint64>"`, s.tok)))
	}
	for i := range vs {
		for j := range vs[i].Transcript {
			e := &vs[i].Transcript[j]
			if !e.Close {
				b, _ := hex.DecodeString(e.Hex)
				q := strconv.Quote(string(b))
				e.Text = q[1 : len(q)-1]
			}
		}
	}
	return vs
}

// TestVectorFiles checks that the files in spec/vectors/simopen are the
// table's, or rewrites them with -update.
func TestVectorFiles(t *testing.T) {
	want := map[string][]byte{}
	for _, v := range vectorTable() {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		want[v.Name+".json"] = append(b, '\n')
	}
	if *update {
		old, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		for name, b := range want {
			if err := os.WriteFile(filepath.Join(vectorDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(want) {
		t.Errorf("%d vector files, want %d (run with -update)", len(files), len(want))
	}
	for _, f := range files {
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want[filepath.Base(f)]) {
			t.Errorf("%s differs from the table in vectors_test.go (run with -update)", f)
		}
	}
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s: %v", vectorDir, err)
	}
	var vs []vector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v vector
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		vs = append(vs, v)
	}
	return vs
}

// TestVectors replays every vector against every side under test.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, name := range []string{"a", "b"} {
			s := v.A
			if name == "b" {
				s = v.B
			}
			if s.Mode == "script" {
				continue
			}
			t.Run(v.Name+"/"+name, func(t *testing.T) {
				switch s.Mode {
				case "dial":
					replayDial(t, v, name, s)
				case "accept":
					replayAccept(t, v, name, s)
				default:
					t.Fatalf("unknown mode %q", s.Mode)
				}
			})
		}
	}
}

func decodeSide(t *testing.T, s vecSide) (local, remote peer.ID, nonce uint64) {
	t.Helper()
	l, err1 := hex.DecodeString(s.LocalPeer)
	r, err2 := hex.DecodeString(s.RemotePeer)
	var err3 error
	if s.Nonce != "" {
		nonce, err3 = strconv.ParseUint(s.Nonce, 10, 64)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatalf("side: %v", err)
	}
	return peer.ID(l), peer.ID(r), nonce
}

func entryBytes(t *testing.T, e vecEntry) []byte {
	t.Helper()
	b, err := hex.DecodeString(e.Hex)
	if err != nil {
		t.Fatalf("entry hex: %v", err)
	}
	return b
}

// replayDial runs the sans-IO machine of side name through the transcript:
// each of its entries must be its next write (or its held bytes), each of
// the peer's is fed to it.
func replayDial(t *testing.T, v vector, name string, s vecSide) {
	local, remote, nonce := decodeSide(t, s)
	cfg := Config{Protocols: s.Protocols, LocalPeer: local, RemotePeer: remote}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	m := newMachine(s.Protocols, local, remote, nonce)
	dec := newDecoder(DefaultMaxTokenLen)
	var pending [][]byte
	var err error
	for i, e := range v.Transcript {
		pending = append(pending, m.output()...)
		if e.From == name {
			if e.Close {
				continue
			}
			want := entryBytes(t, e)
			var got []byte
			if e.Pipelined {
				got = m.takeHeld()
			} else if len(pending) > 0 {
				got, pending = pending[0], pending[1:]
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("entry %d: wrote %q, want %q", i, got, want)
			}
			continue
		}
		if err != nil {
			continue // a failed side reads no more; its queued writes may still follow
		}
		if e.Close {
			if m.state != stateDone {
				err = m.eof()
			}
			continue
		}
		dec.push(entryBytes(t, e))
		for err == nil && m.state != stateDone {
			tok, ok, derr := dec.next()
			if derr != nil {
				err = m.fail(derr)
				break
			}
			if !ok {
				break
			}
			err = m.receive(tok)
		}
	}
	pending = append(pending, m.output()...)
	if len(pending) > 0 || len(m.held) > 0 {
		t.Errorf("unwritten output at the end: %q, held %q", pending, m.held)
	}
	checkExpect(t, v.Expect[name], m.res, err, m.state == stateDone)
	if m.state == stateDone && len(dec.rest()) != 0 {
		t.Errorf("rest %q, want none", dec.rest())
	}
}

// replayAccept runs Accept over a pipe fed the peer's bytes and compares
// everything it wrote with its entries.
func replayAccept(t *testing.T, v vector, name string, s vecSide) {
	local, remote, _ := decodeSide(t, s)
	ca, cb := simopentest.Pipe(0)
	defer cb.Close()
	var want []byte
	for _, e := range v.Transcript {
		switch {
		case e.From == name:
			want = append(want, entryBytes(t, e)...)
		case e.Close:
			cb.CloseWrite()
		default:
			cb.Write(entryBytes(t, e))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, _, err := Accept(ctx, ca, Config{Protocols: s.Protocols, LocalPeer: local, RemotePeer: remote})
	ca.Close()
	got, rerr := io.ReadAll(cb)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Accept wrote %q, want %q", got, want)
	}
	checkExpect(t, v.Expect[name], res, err, err == nil)
}

func checkExpect(t *testing.T, want vecExpect, res Result, err error, done bool) {
	t.Helper()
	if want.Error != "" {
		var pe *ProtocolError
		match := false
		switch want.Error {
		case "protocol":
			match = errors.As(err, &pe) && pe.Got == want.Got && pe.Expected == want.Expected
		case "malformed":
			match = errors.Is(err, ErrMalformedToken)
		case "tie":
			match = errors.Is(err, ErrSimopenTie)
		case "no-common-protocol":
			match = errors.Is(err, ErrNoCommonProtocol)
		case "eof":
			match = errors.Is(err, io.ErrUnexpectedEOF)
		case "peer-without-simopen":
			match = errors.Is(err, ErrPeerWithoutSimopen) && strings.Contains(err.Error(), strconv.Quote(want.Got))
		default:
			t.Fatalf("unknown expected error kind %q", want.Error)
		}
		if !match {
			t.Errorf("err %v, want a %q error (expected %s, got %q)", err, want.Error, want.Expected, want.Got)
		}
		return
	}
	if err != nil || !done {
		t.Fatalf("err %v, done %v; want a result", err, done)
	}
	if got := res.Role.String(); got != want.Role {
		t.Errorf("role %s, want %s", got, want.Role)
	}
	if res.Protocol != want.Protocol {
		t.Errorf("protocol %q, want %q", res.Protocol, want.Protocol)
	}
	if res.Pipelined != want.Pipelined {
		t.Errorf("pipelined %v, want %v", res.Pipelined, want.Pipelined)
	}
	switch {
	case want.Election == nil && res.Election != nil:
		t.Errorf("election %+v, want none", res.Election)
	case want.Election != nil && res.Election == nil:
		t.Errorf("no election, want %+v", want.Election)
	case want.Election != nil:
		got := vecElection{Local: u(res.Election.Local), Remote: u(res.Election.Remote), TieBreak: res.Election.TieBreak}
		if got != *want.Election {
			t.Errorf("election %+v, want %+v", got, *want.Election)
		}
	}
}

func decodeHex(s string) ([]byte, error) { return hex.DecodeString(s) }
