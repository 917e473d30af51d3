package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/flynn/noise"

	"github.com/concordp2p/concord/peer"
)

// session is one case's connection and what its steps learned. It is used
// by one goroutine, the case's.
type session struct {
	ctx     context.Context
	e       *runEnv
	raw     *net.TCPConn
	rd      *bufio.Reader // over raw
	sec     net.Conn      // the secured connection, once a handshake completed
	srd     *bufio.Reader // over sec
	pending []string      // answers owed to a lazy select, read before the next read
	vars    map[string]string
	notes   []string
	muxer   string // agreed in the security handshake
}

func newSession(ctx context.Context, e *runEnv, c *net.TCPConn) *session {
	return &session{ctx: ctx, e: e, raw: c, rd: bufio.NewReader(c), vars: map[string]string{}}
}

func (s *session) close() { _ = s.raw.Close() }

func (s *session) note(format string, a ...any) { s.notes = append(s.notes, fmt.Sprintf(format, a...)) }

func (s *session) observed() string {
	if len(s.notes) == 0 {
		return "as expected"
	}
	return strings.Join(s.notes, "; ")
}

func (s *session) deadline(d time.Duration) { _ = s.raw.SetDeadline(time.Now().Add(d)) }

func (s *session) reader() *bufio.Reader {
	if s.sec != nil {
		return s.srd
	}
	return s.rd
}

func (s *session) writer() io.Writer {
	if s.sec != nil {
		return s.sec
	}
	return s.raw
}

// expand replaces {name} by saved variables.
func (s *session) expand(t string) string {
	for k, v := range s.vars {
		t = strings.ReplaceAll(t, "{"+k+"}", v)
	}
	return t
}

func (s *session) step(st Step) error {
	switch {
	case st.Send != nil:
		return s.send(st.Send)
	case st.Read != nil:
		return s.read(st.Read)
	case st.End != nil:
		return s.end(st.End)
	case st.Trickle != nil:
		return s.trickle(st.Trickle)
	case st.Select != nil:
		return s.selectProto(st.Select.Protocol, st.Select.Lazy)
	case st.Serve != nil:
		return s.serve(st.Serve.Protocol)
	case st.Noise != nil:
		return s.noise(st.Noise)
	case st.TLS != nil:
		return s.tls(st.TLS)
	case st.Yamux != nil:
		if s.muxer == yamuxID {
			return nil
		}
		if s.sec == nil {
			return failf("yamux needs a secured connection")
		}
		return s.selectProto(yamuxID, false)
	case st.Frame != nil:
		return s.frame(st.Frame)
	case st.ExpectFrame != nil:
		return s.expectFrame(st.ExpectFrame)
	case st.Election != nil:
		return s.election(st.Election)
	}
	return failf("empty step")
}

// isTimeout tells a deadline from the target closing or resetting.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (s *session) send(st *SendStep) error {
	b, err := hex.DecodeString(st.Hex)
	if err != nil {
		return failf("bad hex in case: %v", err)
	}
	for _, t := range st.Tokens {
		b = AppendToken(b, s.expand(t))
	}
	b = append(b, make([]byte, st.Zeros)...)
	w := s.writer()
	if st.Raw {
		w = s.raw
	}
	s.deadline(s.e.r.answerTimeout())
	if _, err := w.Write(b); err != nil {
		// The target may close before it has read everything; a later
		// step judges that.
		s.note("write: %v", err)
	}
	return nil
}

func (s *session) readToken() (string, error) {
	if err := s.drainPending(); err != nil {
		return "", err
	}
	s.deadline(s.e.r.answerTimeout())
	return ReadToken(s.reader())
}

// drainPending reads the answers to a lazy select: the header, then the
// echo of the proposal.
func (s *session) drainPending() error {
	for len(s.pending) > 0 {
		want := s.pending[0]
		s.pending = s.pending[1:]
		s.deadline(s.e.r.answerTimeout())
		got, err := ReadToken(s.reader())
		if err != nil {
			return failf("reading the answer %q to a lazy select: %v", want, err)
		}
		if got == mssNA && want != mssHeader {
			s.pending = nil
			return notApplicable("target answered na to %s", want)
		}
		if got != want {
			return failf("lazy select: got %q, want %q", got, want)
		}
	}
	return nil
}

func (s *session) read(st *ReadStep) error {
	tok, err := s.readToken()
	if err != nil {
		var v *verdict
		if errors.As(err, &v) {
			return err
		}
		return failf("reading a token (want %q): %v", st.Token+st.Prefix, err)
	}
	want := s.expand(st.Token)
	if st.Otherwise != "" && ((want != "" && tok != want) || (st.Prefix != "" && !strings.HasPrefix(tok, st.Prefix))) {
		return notApplicable("%s (it sent %q)", st.Otherwise, tok)
	}
	switch {
	case want != "" && tok != want:
		return failf("got %q, want %q", tok, want)
	case st.Prefix != "" && !strings.HasPrefix(tok, st.Prefix):
		return failf("got %q, want %s…", tok, st.Prefix)
	}
	if st.Save != "" {
		s.vars[st.Save] = strings.TrimPrefix(tok, st.Prefix)
		s.note("%s: %q", st.Save, tok)
	}
	return nil
}

func (s *session) end(st *EndStep) error {
	d := s.e.r.answerTimeout()
	if st.Within == "stage" {
		d = s.e.r.stageTimeout()
	}
	start := time.Now()
	s.deadline(d)
	var seen []string
	r := s.reader()
	for i := 0; i < 4096; i++ {
		var err error
		if s.sec != nil {
			_, err = r.Discard(r.Buffered() + 1) // any data is allowed
		} else {
			var tok string
			tok, err = ReadToken(r)
			if err == nil {
				if !allowed(st.Allow, tok) {
					return failf("target sent %q, want only %q then close", tok, st.Allow)
				}
				seen = append(seen, fmt.Sprintf("%q", tok))
				continue
			}
		}
		if err == nil {
			continue
		}
		el := time.Since(start).Round(time.Millisecond)
		switch {
		case isTimeout(err):
			return failf("connection still open after %v (read %s)", d, list(seen))
		case errors.Is(err, errMalformed):
			return failf("target sent a malformed token: %v", err)
		}
		s.note("closed after %v (read %s; %v)", el, list(seen), closeReason(err))
		return nil
	}
	return failf("target kept sending")
}

func allowed(allow []string, tok string) bool {
	for _, a := range allow {
		if a == "*" || a == tok {
			return true
		}
	}
	return false
}

func list(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

func closeReason(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "EOF"
	}
	return err.Error()
}

func (s *session) trickle(st *TrickleStep) error {
	interval, err := time.ParseDuration(st.Interval)
	if err != nil || interval <= 0 {
		return failf("bad interval %q in case", st.Interval)
	}
	b := Tokens(st.Tokens...)
	if len(b) == 0 {
		return failf("nothing to trickle")
	}
	_ = s.raw.SetDeadline(time.Time{})
	closed := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, s.rd)
		if err == nil {
			err = io.EOF
		}
		closed <- err
	}()
	d := s.e.r.stageTimeout() + s.e.r.answerTimeout()
	limit := time.NewTimer(d)
	defer limit.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for i := 0; i < 1<<20; i++ {
		select {
		case err := <-closed:
			s.note("closed after %v, %d bytes trickled (%v)", time.Since(start).Round(time.Millisecond), sent, closeReason(err))
			return nil
		case <-limit.C:
			_ = s.raw.Close()
			<-closed
			return failf("connection still open after %v of trickling (%d bytes)", d, sent)
		case <-tick.C:
			if _, err := s.raw.Write([]byte{b[sent%len(b)]}); err == nil {
				sent++
			}
		}
	}
	_ = s.raw.Close()
	<-closed
	return failf("trickle loop bound reached")
}

// selectProto is multistream-select as initiator on the current connection.
func (s *session) selectProto(proto string, lazy bool) error {
	s.deadline(s.e.r.answerTimeout())
	if _, err := s.writer().Write(Tokens(mssHeader, proto)); err != nil {
		return failf("write: %v", err)
	}
	s.pending = append(s.pending, mssHeader, proto)
	if lazy {
		return nil
	}
	return s.drainPending()
}

// serve answers proposals as a multistream-select responder until proto is
// proposed (at most 8 proposals).
func (s *session) serve(proto string) error {
	for i := 0; i < 8; i++ {
		tok, err := s.readToken()
		if err != nil {
			return failf("reading a proposal: %v", err)
		}
		if tok == proto {
			_, err := s.raw.Write(Tokens(proto))
			return err
		}
		if _, err := s.raw.Write(Tokens(mssNA)); err != nil {
			return err
		}
	}
	return notApplicable("target did not propose %s", proto)
}

// bufConn reads through the session's buffered reader, so that no byte read
// ahead is lost when a handshake takes over the connection.
type bufConn struct {
	net.Conn
	rd *bufio.Reader
}

func (c bufConn) Read(p []byte) (int, error) { return c.rd.Read(p) }

func (s *session) noise(st *NoiseStep) error {
	identity := s.e.identity
	if st.Identity == "other" {
		k, err := peer.GenerateKey(peer.Ed25519, nil)
		if err != nil {
			return err
		}
		identity = k
	}
	muxers := []string{yamuxID}
	if st.Muxers != nil {
		muxers = *st.Muxers
	}
	initiator := st.Role != "responder"
	s.deadline(s.e.r.answerTimeout())
	if st.Mutate == "truncated-message-1" {
		short := make([]byte, 16)
		_, _ = rand.Read(short)
		if _, err := s.raw.Write(frameNoise(short)); err != nil {
			s.note("write: %v", err)
		}
		if err := s.drainPending(); err != nil {
			return err
		}
		return s.expectClosed("after a 16-byte message 1")
	}
	static, err := noise.DH25519.GenerateKeypair(rand.Reader)
	if err != nil {
		return err
	}
	h := noiseHandshake{initiator: initiator, static: static,
		payload: noisePayload{identity: identity, muxers: muxers, mutate: st.Mutate}, beforeRead: s.drainPending}
	nc, rp, err := h.run(s.raw, s.rd)
	var he *handshakeError
	var v *verdict
	if errors.As(err, &v) {
		return err
	}
	if err != nil {
		if errors.As(err, &he) && he.read && st.Expect == "refused" {
			s.note("refused at %s (%v)", he.step, closeReason(he.err))
			return nil
		}
		return failf("handshake: %v", err)
	}
	if s.e.targetID != "" && rp.id != s.e.targetID {
		return failf("target authenticated as %s, want %s", rp.id, s.e.targetID)
	}
	var agreed string
	if initiator {
		agreed = firstCommon(muxers, rp.muxers)
	} else {
		agreed = firstCommon(rp.muxers, muxers)
	}
	if st.Expect == "refused" {
		if !initiator {
			return failf("target sent a valid message 3: it accepted")
		}
		return s.expectRefusedAfter(nc, "message 3")
	}
	if st.Muxer != "" && agreed != st.Muxer {
		return failf("agreed muxer %q (target offered %q), want %q", agreed, rp.muxers, st.Muxer)
	}
	s.sec, s.srd, s.muxer = nc, bufio.NewReader(nc), agreed
	s.note("Noise as %s; muxer %q", roleName(initiator), agreed)
	return nil
}

func roleName(initiator bool) string {
	if initiator {
		return "initiator"
	}
	return "responder"
}

func firstCommon(pref, other []string) string {
	for _, p := range pref {
		for _, o := range other {
			if p == o {
				return p
			}
		}
	}
	return ""
}

// yamuxPing is a ping request, the probe that shows whether the target kept
// a connection.
var yamuxPing = AppendFrame(nil, Frame{Type: yamuxTypePing, Flags: yamuxFlagSYN, Length: 0x5eed})

// expectRefusedAfter probes a connection the target should have refused
// after its last handshake message: a refusing target closes it; one that
// accepted answers (or sends anything that decrypts).
func (s *session) expectRefusedAfter(c net.Conn, after string) error {
	s.deadline(s.e.r.answerTimeout())
	_, _ = c.Write(yamuxPing)
	var b [1]byte
	_, err := c.Read(b[:])
	switch {
	case err == nil:
		return failf("target accepted: it sent data after %s", after)
	case isTimeout(err):
		return failf("connection still open %v after %s", s.e.r.answerTimeout(), after)
	}
	s.note("refused after %s (%s)", after, closeReason(err))
	return nil
}

func (s *session) expectClosed(after string) error {
	s.deadline(s.e.r.answerTimeout())
	_, err := s.rd.Discard(s.rd.Buffered() + 1)
	for i := 0; err == nil && i < 1024; i++ {
		_, err = s.rd.Discard(s.rd.Buffered() + 1)
	}
	switch {
	case err == nil:
		return failf("target kept sending %s", after)
	case isTimeout(err):
		return failf("connection still open %v %s", s.e.r.answerTimeout(), after)
	}
	s.note("closed %s (%s)", after, closeReason(err))
	return nil
}

func (s *session) tls(st *TLSStep) error {
	if err := s.drainPending(); err != nil {
		return err
	}
	now := time.Now()
	identity := s.e.identity
	if st.Identity == "other" {
		k, err := peer.GenerateKey(peer.Ed25519, nil)
		if err != nil {
			return err
		}
		identity = k
	}
	cert, err := makeCertificate(identity, st.Mutate, now)
	if err != nil {
		return err
	}
	alpn := []string{yamuxID, tlsALPN}
	if st.ALPN != nil {
		alpn = *st.ALPN
	}
	var verifyErr error
	var id peer.ID
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the libp2p checks are done below
		Certificates:       []tls.Certificate{cert},
		NextProtos:         alpn,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, verifyErr = peerFromCertificate(raw, now)
			if verifyErr == nil && s.e.targetID != "" && id != s.e.targetID {
				verifyErr = fmt.Errorf("certificate of %s, want %s", id, s.e.targetID)
			}
			return verifyErr
		},
	}
	s.deadline(s.e.r.answerTimeout())
	if st.Role == "server" {
		return s.tlsServer(st, cfg, &verifyErr)
	}
	tc := tls.Client(bufConn{Conn: s.raw, rd: s.rd}, cfg)
	err = tc.HandshakeContext(s.ctx)
	if verifyErr != nil {
		return failf("target's certificate: %v", verifyErr)
	}
	if err != nil {
		if st.Expect != "ok" {
			s.note("handshake refused (%v)", err)
			return nil
		}
		return failf("handshake: %v", err)
	}
	proto := tc.ConnectionState().NegotiatedProtocol
	if st.Expect == "either" {
		if proto != yamuxID {
			_, _ = tc.Write(Tokens(mssHeader, yamuxID))
		}
		if err := s.expectRefusedAfter(tc, fmt.Sprintf("the handshake (ALPN %q)", proto)); err != nil {
			s.note("accepted (ALPN %q)", proto)
		}
		return nil
	}
	if st.Expect == "refused" {
		if proto != yamuxID {
			// Speak multistream-select, so that an accepting target answers.
			_, _ = tc.Write(Tokens(mssHeader, yamuxID))
		}
		return s.expectRefusedAfter(tc, fmt.Sprintf("the handshake (ALPN %q)", proto))
	}
	if st.Muxer != "" && proto != st.Muxer {
		return failf("ALPN %q, want %q", proto, st.Muxer)
	}
	s.sec, s.srd = tc, bufio.NewReader(tc)
	if proto != tlsALPN {
		s.muxer = proto
	}
	s.note("TLS 1.3; ALPN %q", proto)
	return nil
}

// tlsServer is the runner as TLS server to a target that dialed it. A
// client that refuses the server's certificate sends an alert instead of
// its Finished, so the server's handshake fails, or completes the
// handshake and then closes without a byte more; a client that accepts
// completes it and answers on the connection.
func (s *session) tlsServer(st *TLSStep, cfg *tls.Config, verifyErr *error) error {
	cfg.ClientAuth = tls.RequireAnyClientCert
	cfg.NextProtos = []string{yamuxID, tlsALPN}
	tc := tls.Server(bufConn{Conn: s.raw, rd: s.rd}, cfg)
	err := tc.HandshakeContext(s.ctx)
	if *verifyErr != nil {
		return failf("target's certificate: %v", *verifyErr)
	}
	switch {
	case err != nil && st.Expect != "ok":
		s.note("target aborted the handshake (%v)", err)
		return nil
	case err != nil:
		return failf("handshake: %v", err)
	case st.Expect == "refused":
		// A client may check the certificate once its handshake is done
		// (js-libp2p does) and then close: a refusal all the same, as
		// long as it never answers on the connection. Which of the two a
		// run sees is a race, so both pass.
		return s.expectRefusedAfter(tc, fmt.Sprintf("the handshake completed (ALPN %q)", tc.ConnectionState().NegotiatedProtocol))
	}
	proto := tc.ConnectionState().NegotiatedProtocol
	if st.Muxer != "" && proto != st.Muxer {
		return failf("ALPN %q, want %q", proto, st.Muxer)
	}
	s.sec, s.srd = tc, bufio.NewReader(tc)
	if proto != tlsALPN {
		s.muxer = proto
	}
	s.note("TLS 1.3 as server; ALPN %q", proto)
	return nil
}

func (s *session) frame(st *FrameStep) error {
	if s.sec == nil {
		return failf("frames need a secured connection")
	}
	flags, _ := parseFlags(st.Flags)
	payload := Tokens(st.Tokens...)
	payload = append(payload, make([]byte, st.Zeros)...)
	n := st.Repeat
	if n == 0 {
		n = 1
	}
	var b []byte
	for i := 0; i < n; i++ {
		f := Frame{Type: frameTypes[st.Type], Flags: flags, Stream: st.Stream, Length: st.Length + uint32(i)}
		if f.Type == yamuxTypeData {
			f.Length, f.Data = uint32(len(payload)), payload
		}
		b = AppendFrame(b, f)
	}
	s.deadline(s.e.r.answerTimeout())
	if _, err := s.sec.Write(b); err != nil {
		s.note("write: %v", err)
	}
	return nil
}

func (m FrameMatch) matches(f Frame) bool {
	flags, _ := parseFlags(m.Flags)
	return f.Type == frameTypes[m.Type] && f.Flags&flags == flags &&
		(m.Stream == nil || *m.Stream == f.Stream) && (m.Length == nil || *m.Length == f.Length)
}

func (s *session) expectFrame(st *ExpectFrameStep) error {
	if s.sec == nil {
		return failf("frames need a secured connection")
	}
	d := s.e.r.answerTimeout()
	s.deadline(d)
	if st.Resend != nil {
		stop := s.resend(st.Resend)
		defer stop()
	}
	start := time.Now()
	var last []string
	skipped := 0
	for i := 0; i < 100000; i++ {
		f, err := ReadFrame(s.srd)
		if err != nil {
			if isTimeout(err) {
				return failf("no matching frame within %v (%d others, last: %s)", d, skipped, list(last))
			}
			if st.OrEnd {
				s.note("session closed after %v (%s), %d other frames", time.Since(start).Round(time.Millisecond), closeReason(err), skipped)
				return nil
			}
			return failf("connection closed (%s), %d other frames, last: %s", closeReason(err), skipped, list(last))
		}
		for _, m := range st.AnyOf {
			if m.matches(f) {
				s.note("got %s", f)
				return nil
			}
		}
		skipped++
		last = append(last, f.String())
		if len(last) > 3 {
			last = last[1:]
		}
	}
	return failf("no matching frame in 100000")
}

// resend writes f every 100 ms from its own goroutine (the only writer
// meanwhile) until the returned function is called, which waits for it.
func (s *session) resend(f *FrameStep) (stop func()) {
	flags, _ := parseFlags(f.Flags)
	b := AppendFrame(nil, Frame{Type: frameTypes[f.Type], Flags: flags, Stream: f.Stream, Length: f.Length})
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for i := 0; i < 1000; i++ {
			select {
			case <-quit:
				return
			case <-t.C:
				if _, err := s.sec.Write(b); err != nil {
					return
				}
			}
		}
	}()
	return func() { close(quit); <-done }
}

// election finishes a simultaneous-open election after the opening tokens
// (spec/simopen.md 3.3): both sides have sent the header, the extension's
// token and a proposal, and read the other's.
func (s *session) election(st *ElectionStep) error {
	var mine, theirs string
	switch st.Number {
	case "max":
		mine = "18446744073709551615"
	case "0":
		mine = "0"
	}
	if mine != "" {
		if _, err := s.raw.Write(Tokens("select:" + mine)); err != nil {
			return failf("write: %v", err)
		}
	}
	tok, err := s.readToken()
	if err != nil || !strings.HasPrefix(tok, "select:") {
		return failf("want select:<n>, got %q (%v)", tok, err)
	}
	theirs = strings.TrimPrefix(tok, "select:")
	if mine == "" {
		mine = theirs
		if _, err := s.raw.Write(Tokens("select:" + mine)); err != nil {
			return failf("write: %v", err)
		}
	}
	var targetInitiates bool
	switch st.Number {
	case "max":
		targetInitiates = theirs == mine // a tie with the maximum: decided below
	case "0":
		targetInitiates = true
	}
	if mine == theirs {
		if s.e.targetID == "" {
			return notApplicable("a tie needs the target's peer ID")
		}
		targetInitiates = bytes.Compare([]byte(s.e.targetID), []byte(s.e.selfID)) > 0
	}
	want := "responder"
	if targetInitiates {
		want = "initiator"
	}
	role, err := s.readToken()
	if err != nil {
		return failf("want %q after select:%s vs select:%s, read: %v", want, mine, theirs, err)
	}
	if role != want {
		return failf("target sent %q after select:%s vs select:%s, want %q", role, mine, theirs, want)
	}
	s.note("select:%s vs select:%s, target said %q", mine, theirs, role)
	if targetInitiates {
		if _, err := s.raw.Write(Tokens("responder")); err != nil {
			return failf("write: %v", err)
		}
		if err := s.serve(noiseID); err != nil {
			return err
		}
		return s.noise(&NoiseStep{Role: "responder", Expect: "ok"})
	}
	if _, err := s.raw.Write(Tokens("initiator", noiseID)); err != nil {
		return failf("write: %v", err)
	}
	s.pending = append(s.pending, noiseID) // the echo; "responder" came already
	return s.noise(&NoiseStep{Expect: "ok"})
}
