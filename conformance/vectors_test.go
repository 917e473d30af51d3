package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flynn/noise"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
)

// The vectors of spec/vectors/{multistream,noise,tls,yamux} are generated
// from the tables below, in which the expected bytes are spelled out from
// the wire formats (go test ./conformance -run Vectors -update rewrites the
// files), and replayed against Concord's implementations and the suite's
// own codecs.
var update = flag.Bool("update", false, "rewrite spec/vectors/{multistream,noise,tls,yamux} from the tables in vectors_test.go")

const vectorRoot = "../spec/vectors"

// The shapes follow spec/vectors/simopen (see spec/vectors/README.md).
type vecSide struct {
	Mode      string   `json:"mode"`
	Protocols []string `json:"protocols,omitempty"`
	// Noise sides: the identity key (PrivateKey protobuf), the static and
	// ephemeral X25519 private keys, all hex, and the muxers offered.
	Identity  string   `json:"identity,omitempty"`
	Static    string   `json:"static,omitempty"`
	Ephemeral string   `json:"ephemeral,omitempty"`
	Muxers    []string `json:"muxers,omitempty"`
}

type vecEntry struct {
	From  string `json:"from"`
	Hex   string `json:"hex,omitempty"`
	Text  string `json:"text,omitempty"`
	Close bool   `json:"close,omitempty"`
	// Note says what a noise entry is (message 1, transport, …).
	Note string `json:"note,omitempty"`
}

type vecExpect struct {
	Protocol   string `json:"protocol,omitempty"`
	Error      string `json:"error,omitempty"`
	RemotePeer string `json:"remote_peer,omitempty"`
	Muxer      string `json:"muxer,omitempty"`
}

type vector struct {
	Name        string               `json:"name"`
	Description string               `json:"description"`
	A           *vecSide             `json:"a,omitempty"`
	B           *vecSide             `json:"b,omitempty"`
	Transcript  []vecEntry           `json:"transcript,omitempty"`
	Expect      map[string]vecExpect `json:"expect,omitempty"`
	// Single-value vectors: a yamux frame, a Noise payload, a certificate.
	Frame       *vecFrame `json:"frame,omitempty"`
	Payload     *vecPay   `json:"payload,omitempty"`
	Certificate string    `json:"certificate,omitempty"`
	PeerID      string    `json:"peer_id,omitempty"`
	Error       string    `json:"error,omitempty"`
	Hex         string    `json:"hex,omitempty"`
	Source      string    `json:"source,omitempty"`
}

type vecFrame struct {
	Type   string   `json:"type"`
	Flags  []string `json:"flags,omitempty"`
	Stream uint32   `json:"stream"`
	Length uint32   `json:"length"`
	Data   string   `json:"data,omitempty"` // hex
}

type vecPay struct {
	Identity string   `json:"identity"` // PrivateKey protobuf, hex
	Static   string   `json:"static"`   // X25519 public key, hex
	Muxers   []string `json:"muxers,omitempty"`
	Mutate   string   `json:"mutate,omitempty"`
	Signed   string   `json:"signed"` // the bytes identity_sig signs, hex
}

func goText(b []byte) string {
	q := strconv.Quote(string(b))
	return q[1 : len(q)-1]
}

func entry(from string, b []byte) vecEntry {
	return vecEntry{From: from, Hex: hex.EncodeToString(b), Text: goText(b)}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// ---- multistream-select ----

func mssTable() []vector {
	hdr := unhex("13 2f6d756c746973747265616d2f312e302e30 0a") // "\x13/multistream/1.0.0\n"
	noiseTok := unhex("07 2f6e6f697365 0a")                    // "\a/noise\n"
	na := unhex("03 6e61 0a")                                  // the spec's example
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	a := &vecSide{Mode: "script"}
	b := &vecSide{Mode: "accept", Protocols: []string{noiseID}}
	v := func(name, desc string, ab, ba []byte, exp vecExpect) vector {
		t := []vecEntry{entry("a", ab)}
		if ba != nil {
			t = append(t, entry("b", ba))
		}
		if exp.Error != "" {
			t = append(t, vecEntry{From: "b", Close: true})
		}
		return vector{Name: name, Description: desc, A: a, B: b, Transcript: t, Expect: map[string]vecExpect{"b": exp}}
	}
	long := "/" + strings.Repeat("x", 1022) // 1023 bytes + newline = 1024
	longTok := cat([]byte{0x80, 0x08}, []byte(long), []byte("\n"))
	return []vector{
		v("select", "The header and a proposal in one write (multistream 3.2, 3.5); the listener echoes both.",
			cat(hdr, noiseTok), cat(hdr, noiseTok), vecExpect{Protocol: noiseID}),
		v("na-then-select", "An unknown protocol is answered na (3.2); the next proposal is echoed.",
			cat(hdr, unhex("0f 2f756e6b6e6f776e2f312e302e30 0a"), noiseTok), cat(hdr, na, noiseTok), vecExpect{Protocol: noiseID}),
		v("ls-answered-na", "ls is answered na, as any unknown protocol, by go-multistream v0.6 (3.4).",
			cat(hdr, unhex("03 6c73 0a"), noiseTok), cat(hdr, na, noiseTok), vecExpect{Protocol: noiseID}),
		v("simopen-token-answered-na", "A listener answers na to /libp2p/simultaneous-connect (3.3; simopen 3.2).",
			cat(hdr, Tokens(simopenToken), noiseTok), cat(hdr, na, noiseTok), vecExpect{Protocol: noiseID}),
		v("max-size-token", "A token of exactly 1024 bytes with its newline (2.5): length 1024 = 80 08.",
			cat(hdr, longTok, noiseTok), cat(hdr, na, noiseTok), vecExpect{Protocol: noiseID}),
		v("malformed-oversize", "Length 1025 (81 08) is over the limit (2.5): the listener closes.",
			cat(hdr, []byte{0x81, 0x08}, bytes.Repeat([]byte("/"), 1024), []byte("\n")), hdr, vecExpect{Error: "malformed"}),
		v("malformed-non-minimal-length", "/noise with its length 7 in two bytes (87 00) (2.2).",
			cat(hdr, unhex("8700 2f6e6f697365 0a")), hdr, vecExpect{Error: "malformed"}),
		v("malformed-missing-newline", "A 7-byte token ending in X, not a newline (2.3).",
			cat(hdr, unhex("07 2f6e6f69736558")), hdr, vecExpect{Error: "malformed"}),
		v("malformed-zero-length", "A token of length 0 (2.3).",
			cat(hdr, []byte{0}), hdr, vecExpect{Error: "malformed"}),
		notUTF8(v("malformed-not-utf8", "A token whose body ff fe is not UTF-8 (2.4). Replayed against the suite's reader only: Concord's simopen.Accept alone (go-multistream v0.6.1, which does not check UTF-8) answers na and waits for another proposal; a Concord host closes the connection (case mss-not-utf8).",
			cat(hdr, unhex("03 fffe 0a")), hdr, vecExpect{Error: "malformed"})),
		v("malformed-wrong-header", "The first token is not /multistream/1.0.0 (3.1).",
			cat(Tokens("/multistream/2.0.0"), noiseTok), hdr, vecExpect{Error: "malformed"}),
	}
}

func notUTF8(v vector) vector {
	v.B = &vecSide{Mode: "reader", Protocols: v.B.Protocols}
	return v
}

// replayAccept feeds a's bytes to Concord's accepting side (simopen.Accept,
// a go-multistream listener) and compares everything it writes.
func replayAccept(t *testing.T, v vector) {
	client, server := net.Pipe()
	defer client.Close()
	var in []byte
	var want []byte
	for _, e := range v.Transcript {
		if e.From == "a" {
			in = append(in, unhex(e.Hex)...)
		} else {
			want = append(want, unhex(e.Hex)...)
		}
	}
	type out struct {
		res simopen.Result
		err error
	}
	done := make(chan out, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	go func() {
		res, c, err := simopen.Accept(ctx, server, simopen.Config{Protocols: v.B.Protocols})
		if c != nil {
			_ = c.Close()
		} else {
			_ = server.Close()
		}
		done <- out{res, err}
	}()
	wrote := make(chan error, 1)
	go func() {
		_, err := client.Write(in)
		wrote <- err
	}()
	var got []byte
	buf := make([]byte, 4096)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := 0; i < 1000; i++ {
		n, err := client.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	_ = client.Close()
	<-wrote
	o := <-done
	if !bytes.Equal(got, want) {
		t.Errorf("listener wrote %q, want %q", got, want)
	}
	exp := v.Expect["b"]
	switch {
	case exp.Error != "" && o.err == nil:
		t.Errorf("Accept succeeded with %q, want an error", o.res.Protocol)
	case exp.Error == "" && o.err != nil:
		t.Errorf("Accept: %v", o.err)
	case exp.Error == "" && o.res.Protocol != exp.Protocol:
		t.Errorf("protocol %q, want %q", o.res.Protocol, exp.Protocol)
	}
}

// replayReader checks the suite's own token reader against a's bytes.
func replayReader(t *testing.T, v vector) {
	var in []byte
	for _, e := range v.Transcript {
		if e.From == "a" {
			in = append(in, unhex(e.Hex)...)
		}
	}
	r := bufio.NewReader(bytes.NewReader(in))
	var err error
	for i := 0; i < 16 && err == nil; i++ {
		_, err = ReadToken(r)
	}
	malformed := errors.Is(err, errMalformed)
	if want := v.Expect["b"].Error == "malformed" && v.Name != "malformed-wrong-header"; malformed != want {
		t.Errorf("ReadToken: err %v, want malformed %v", err, want)
	}
}

// ---- yamux ----

func yamuxTable() []vector {
	f := func(name, desc string, fr vecFrame, h string) vector {
		return vector{Name: name, Description: desc, Frame: &fr, Hex: strings.ReplaceAll(h, " ", "")}
	}
	return []vector{
		f("data-syn", "Open stream 1 with 5 bytes of data (yamux 1.1-1.3, 2.1).",
			vecFrame{Type: "data", Flags: []string{"SYN"}, Stream: 1, Length: 5, Data: "68656c6c6f"}, "00 00 0001 00000001 00000005 68656c6c6f"),
		f("window-update-ack", "Accept stream 2 and grow its window by 256 KiB (2.2, 3.2).",
			vecFrame{Type: "window_update", Flags: []string{"ACK"}, Stream: 2, Length: 262144}, "00 01 0002 00000002 00040000"),
		f("data-fin", "Half-close stream 1 with an empty data frame (2.4).",
			vecFrame{Type: "data", Flags: []string{"FIN"}, Stream: 1}, "00 00 0004 00000001 00000000"),
		f("window-update-rst", "Reset stream 3 (2.5).",
			vecFrame{Type: "window_update", Flags: []string{"RST"}, Stream: 3}, "00 01 0008 00000003 00000000"),
		f("ping-syn", "A ping request with the opaque value 0x5eed (4.1).",
			vecFrame{Type: "ping", Flags: []string{"SYN"}, Length: 0x5eed}, "00 02 0001 00000000 00005eed"),
		f("ping-ack", "The answer to ping-syn (4.1).",
			vecFrame{Type: "ping", Flags: []string{"ACK"}, Length: 0x5eed}, "00 02 0002 00000000 00005eed"),
		f("go-away-normal", "Go away, normal termination (5.1).",
			vecFrame{Type: "go_away"}, "00 03 0000 00000000 00000000"),
		f("go-away-protocol-error", "Go away, protocol error (5.1).",
			vecFrame{Type: "go_away", Length: 1}, "00 03 0000 00000000 00000001"),
	}
}

func replayFrame(t *testing.T, v vector) {
	flags, err := parseFlags(v.Frame.Flags)
	if err != nil {
		t.Fatal(err)
	}
	want := Frame{Type: frameTypes[v.Frame.Type], Flags: flags, Stream: v.Frame.Stream, Length: v.Frame.Length}
	if want.Type == yamuxTypeData {
		want.Data = unhex(v.Frame.Data)
	}
	if got := hex.EncodeToString(AppendFrame(nil, want)); got != v.Hex {
		t.Errorf("AppendFrame = %s, want %s", got, v.Hex)
	}
	got, err := ReadFrame(bytes.NewReader(unhex(v.Hex)))
	if err != nil || got.String() != want.String() || !bytes.Equal(got.Data, want.Data) {
		t.Errorf("ReadFrame = %v, %v; want %v", got, err, want)
	}
}

// ---- Noise ----

// Fixed keys: Ed25519 identities from the seeds 0x01… and 0x02…, X25519
// static and ephemeral private keys 0x11…, 0x12… (initiator) and 0x21…,
// 0x22… (responder).
func ed25519Identity(seed byte) []byte {
	k := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(peer.Ed25519))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, k)
}

func x25519(fill byte) noise.DHKey {
	k, err := noise.DH25519.GenerateKeypair(bytes.NewReader(bytes.Repeat([]byte{fill}, 32)))
	if err != nil {
		panic(err)
	}
	return k
}

func mustIdentity(t *testing.T, h string) peer.PrivKey {
	t.Helper()
	k, err := peer.UnmarshalPrivateKey(unhex(h))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func noisePayloadTable(t *testing.T) []vector {
	id := hex.EncodeToString(ed25519Identity(1))
	static := x25519(0x11)
	pay := func(name, desc string, muxers []string, mutate string) vector {
		k := mustIdentity(t, id)
		b, err := noisePayload{identity: k, static: static.Public, muxers: muxers, mutate: mutate}.marshal()
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := peer.IDFromPrivateKey(k)
		v := vector{Name: name, Description: desc, Hex: hex.EncodeToString(b), PeerID: pid.String(),
			Payload: &vecPay{Identity: id, Static: hex.EncodeToString(static.Public), Muxers: muxers, Mutate: mutate,
				Signed: hex.EncodeToString(append([]byte(noiseSigPrefix), static.Public...))}}
		if mutate == mutateBadSignature || mutate == mutateSigWithoutPrefix {
			v.Error = "identity_sig does not verify"
			v.PeerID = ""
		}
		return v
	}
	return []vector{
		pay("payload-yamux", "identity_key, identity_sig and extensions{stream_muxers: [/yamux/1.0.0]} (noise 3.1-3.3, 4.1).", []string{yamuxID}, ""),
		pay("payload-no-extensions", "No muxers: the extensions field is left out.", nil, ""),
		pay("payload-unknown-fields", "Unknown field 99 in the payload and 1025 in the extensions, skipped by a receiver (3.6).", []string{yamuxID}, mutateUnknownFields),
		pay("payload-bad-signature", "identity_sig with one bit flipped (3.4): refused.", []string{yamuxID}, mutateBadSignature),
		pay("payload-sig-without-prefix", "identity_sig over the static key alone, without noise-libp2p-static-key: (3.3): refused.", []string{yamuxID}, mutateSigWithoutPrefix),
	}
}

func replayPayload(t *testing.T, v vector) {
	k := mustIdentity(t, v.Payload.Identity)
	static := unhex(v.Payload.Static)
	b, err := noisePayload{identity: k, static: static, muxers: v.Payload.Muxers, mutate: v.Payload.Mutate}.marshal()
	if err != nil || hex.EncodeToString(b) != v.Hex {
		t.Errorf("payload = %x (%v), want %s", b, err, v.Hex)
	}
	rp, err := parseNoisePayload(unhex(v.Hex), static)
	switch {
	case v.Error != "":
		if err == nil || !strings.Contains(err.Error(), v.Error) {
			t.Errorf("parse: %v, want %q", err, v.Error)
		}
	case err != nil:
		t.Errorf("parse: %v", err)
	case rp.id.String() != v.PeerID || strings.Join(rp.muxers, ",") != strings.Join(v.Payload.Muxers, ","):
		t.Errorf("parsed %s %q, want %s %q", rp.id, rp.muxers, v.PeerID, v.Payload.Muxers)
	}
}

// noiseTranscript runs both sides of XX with the vector's fixed keys over a
// pipe and returns every write, in order.
func noiseTranscript(t *testing.T, a, b *vecSide) ([]vecEntry, map[string]vecExpect) {
	t.Helper()
	side := func(s *vecSide, initiator bool) *noiseHandshake {
		st := dhFromPrivate(t, s.Static)
		return &noiseHandshake{initiator: initiator, static: st, rnd: bytes.NewReader(unhex(s.Ephemeral)),
			payload: noisePayload{identity: mustIdentity(t, s.Identity), muxers: s.Muxers}}
	}
	ia, ib := side(a, true), side(b, false)
	var entries []vecEntry
	ia.transcript = func(fromInitiator bool, framed []byte) {
		if fromInitiator {
			entries = append(entries, vecEntry{From: "a", Hex: hex.EncodeToString(framed)})
		} else {
			entries = append(entries, vecEntry{From: "b", Hex: hex.EncodeToString(framed)})
		}
	}
	ca, cb := net.Pipe()
	defer ca.Close()
	defer cb.Close()
	type res struct {
		c   *noiseConn
		rp  remotePayload
		err error
	}
	bdone := make(chan res, 1)
	go func() {
		c, rp, err := ib.run(cb, bufio.NewReader(cb))
		bdone <- res{c, rp, err}
	}()
	nca, rpa, err := ia.run(ca, bufio.NewReader(ca))
	rb := <-bdone
	if err != nil || rb.err != nil {
		t.Fatalf("handshake: %v / %v", err, rb.err)
	}
	for i, note := range []string{"message 1: -> e", "message 2: <- e, ee, s, es", "message 3: -> s, se"} {
		entries[i].Note = note
	}
	// One transport message each way: a's ping request, b's answer.
	for _, m := range []struct {
		from string
		w    *noiseConn
		r    *noiseConn
		data []byte
	}{{"a", nca, rb.c, yamuxPing}, {"b", rb.c, nca, AppendFrame(nil, Frame{Type: yamuxTypePing, Flags: yamuxFlagACK, Length: 0x5eed})}} {
		ct, err := m.w.enc.Encrypt(nil, nil, m.data)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := m.r.dec.Decrypt(nil, nil, ct)
		if err != nil || !bytes.Equal(pt, m.data) {
			t.Fatalf("transport message from %s does not decrypt: %v", m.from, err)
		}
		entries = append(entries, vecEntry{From: m.from, Hex: hex.EncodeToString(frameNoise(ct)),
			Note: "transport message: yamux " + mustFrame(m.data).String()})
	}
	return entries, map[string]vecExpect{
		"a": {RemotePeer: rpa.id.String(), Muxer: firstCommon(a.Muxers, rpa.muxers)},
		"b": {RemotePeer: rb.rp.id.String(), Muxer: firstCommon(rb.rp.muxers, b.Muxers)},
	}
}

func mustFrame(b []byte) Frame {
	f, _ := ReadFrame(bytes.NewReader(b))
	return f
}

func dhFromPrivate(t *testing.T, h string) noise.DHKey {
	k, err := noise.DH25519.GenerateKeypair(bytes.NewReader(unhex(h)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func noiseXXTable(t *testing.T) []vector {
	fill := func(c byte) string { return hex.EncodeToString(bytes.Repeat([]byte{c}, 32)) }
	a := &vecSide{Mode: "noise-initiator", Identity: hex.EncodeToString(ed25519Identity(1)), Static: fill(0x11), Ephemeral: fill(0x12), Muxers: []string{yamuxID}}
	b := &vecSide{Mode: "noise-responder", Identity: hex.EncodeToString(ed25519Identity(2)), Static: fill(0x21), Ephemeral: fill(0x22), Muxers: []string{"/mplex/6.7.0", yamuxID}}
	tr, exp := noiseTranscript(t, a, b)
	return []vector{{Name: "xx-transcript", Description: "A full Noise_XX_25519_ChaChaPoly_SHA256 handshake with fixed identity, static and ephemeral keys (noise 1.1-1.2, 2.1, 3.1-3.4, 4.1-4.2), then one transport message each way: a yamux ping and its answer. The responder prefers mplex; the initiator's order decides: /yamux/1.0.0.",
		A: a, B: b, Transcript: tr, Expect: exp}}
}

// ---- TLS ----

func tlsTable(t *testing.T) []vector {
	b, err := os.ReadFile("../security/tls/testdata/spec-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Source  string
		Vectors []struct {
			Name, Certificate string
			PeerID            string `json:"peer_id"`
			Error             string
		}
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var out []vector
	for i, v := range file.Vectors {
		name := []string{"valid-ed25519", "valid-ecdsa", "valid-secp256k1", "invalid-signature"}[i]
		vec := vector{Name: name, Description: v.Name, Source: file.Source, Certificate: v.Certificate, PeerID: v.PeerID}
		if v.Error != "" {
			vec.Error = "extension signature does not verify"
		}
		out = append(out, vec)
	}
	return out
}

func replayCertificate(t *testing.T, v vector) {
	// The spec's certificates are valid from 1975 to 4096.
	id, err := peerFromCertificate([][]byte{unhex(v.Certificate)}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	switch {
	case v.Error != "":
		if err == nil || !strings.Contains(err.Error(), v.Error) {
			t.Errorf("got %s, %v; want the error %q", id, err, v.Error)
		}
	case err != nil || id.String() != v.PeerID:
		t.Errorf("got %s, %v; want %s", id, err, v.PeerID)
	}
}

// ---- files ----

func vectorTables(t *testing.T) map[string][]vector {
	return map[string][]vector{
		"multistream": mssTable(),
		"yamux":       yamuxTable(),
		"noise":       append(noisePayloadTable(t), noiseXXTable(t)...),
		"tls":         tlsTable(t),
	}
}

func TestVectorsFiles(t *testing.T) {
	for dir, vs := range vectorTables(t) {
		dir = filepath.Join(vectorRoot, dir)
		want := map[string][]byte{}
		for _, v := range vs {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(v); err != nil {
				t.Fatal(err)
			}
			want[v.Name+".json"] = b.Bytes()
		}
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "*.json"))
			for _, f := range old {
				_ = os.Remove(f)
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			continue
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		if len(files) != len(want) {
			t.Errorf("%s: %d vector files, want %d (run with -update)", dir, len(files), len(want))
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
}

func loadVectors(t *testing.T, dir string) []vector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(vectorRoot, dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s: %v", dir, err)
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

// TestVectors replays every vector file.
func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t, "multistream") {
		if v.B.Mode == "accept" {
			t.Run("multistream/"+v.Name+"/accept", func(t *testing.T) { replayAccept(t, v) })
		}
		t.Run("multistream/"+v.Name+"/reader", func(t *testing.T) { replayReader(t, v) })
	}
	for _, v := range loadVectors(t, "yamux") {
		t.Run("yamux/"+v.Name, func(t *testing.T) { replayFrame(t, v) })
	}
	for _, v := range loadVectors(t, "noise") {
		t.Run("noise/"+v.Name, func(t *testing.T) {
			if v.Payload != nil {
				replayPayload(t, v)
				return
			}
			got, exp := noiseTranscript(t, v.A, v.B)
			if len(got) != len(v.Transcript) {
				t.Fatalf("%d writes, want %d", len(got), len(v.Transcript))
			}
			for i := range got {
				if got[i].From != v.Transcript[i].From || got[i].Hex != v.Transcript[i].Hex {
					t.Errorf("write %d (%s): %s %s, want %s %s", i+1, v.Transcript[i].Note, got[i].From, got[i].Hex, v.Transcript[i].From, v.Transcript[i].Hex)
				}
			}
			for side, want := range v.Expect {
				if exp[side] != want {
					t.Errorf("side %s: %+v, want %+v", side, exp[side], want)
				}
			}
		})
	}
	for _, v := range loadVectors(t, "tls") {
		t.Run("tls/"+v.Name, func(t *testing.T) { replayCertificate(t, v) })
	}
}
