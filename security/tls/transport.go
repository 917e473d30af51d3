package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/concordp2p/concord/internal/ctxconn"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// ID is the protocol ID of libp2p TLS.
const ID = "/tls/1.0.0"

// alertTimeout bounds the alert sent after refusing the peer's certificate.
const alertTimeout = 250 * time.Millisecond

// Steps of the handshake, named in HandshakeError.Step.
const (
	stepStart     = "checking parameters"
	stepCert      = "making the certificate"
	stepHandshake = "TLS 1.3 handshake"
	stepFinish    = "finishing"
)

// Config tunes a Transport. The zero value is the default.
type Config struct {
	// ReuseCertificateFor is how long one certificate key and certificate
	// serve successive handshakes. Zero means DefaultReuseCertificateFor;
	// a negative value, a new key and certificate for every connection.
	ReuseCertificateFor time.Duration

	// VerifiedCacheSize bounds the cache of peer certificates that passed
	// verification (VerifiedCache in the package doc). Zero means
	// DefaultVerifiedCacheSize; a negative value turns the cache off.
	VerifiedCacheSize int

	// SessionCacheSize bounds the session tickets a client keeps, one per
	// peer ID (Resumption in the package doc). Zero means
	// DefaultSessionCacheSize; a negative value turns resumption off in
	// both roles: no tickets issued, none offered.
	SessionCacheSize int

	// Now returns the current time, for certificate validity. Nil means
	// time.Now.
	Now func() time.Time
}

// Defaults of Config.
const (
	// DefaultReuseCertificateFor: a certificate key and certificate serve
	// an hour of handshakes. go-libp2p makes one for the life of its
	// transport. Making one costs a P-256 key, an identity-key signature
	// and a certificate signature, about a fifth of a handshake's CPU on
	// both ends; reusing it reveals nothing new, since the certificate
	// carries the identity key anyway.
	DefaultReuseCertificateFor = time.Hour
	// DefaultVerifiedCacheSize certificates that passed verification are
	// remembered, so that a peer reconnecting with the certificate it
	// reuses is not verified again.
	DefaultVerifiedCacheSize = 1024
	// DefaultSessionCacheSize peers' session tickets are kept, so that
	// reconnecting to one of them resumes.
	DefaultSessionCacheSize = 1024
)

// Transport runs libp2p TLS handshakes for one local identity. It is safe
// for concurrent use.
type Transport struct {
	local    peer.ID
	certs    *certSource
	verified *verifiedCache              // nil when off
	sessions *lru[peer.ID, sessionEntry] // nil when resumption is off
	tickets  *ticketKeys
	now      func() time.Time
}

var _ security.Transport = (*Transport)(nil)

// New returns a Transport authenticating as identity.
func New(identity peer.PrivKey, cfg Config) (*Transport, error) {
	if identity == nil {
		return nil, fmt.Errorf("%w: nil identity key", security.ErrInvalidParams)
	}
	local, err := peer.IDFromPublicKey(identity.Public())
	if err != nil {
		return nil, fmt.Errorf("tls: deriving the local peer ID: %w", err)
	}
	encoded, err := peer.MarshalPublicKey(identity.Public())
	if err != nil {
		return nil, fmt.Errorf("tls: encoding the identity key: %w", err)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	reuse := cfg.ReuseCertificateFor
	if reuse == 0 {
		reuse = DefaultReuseCertificateFor
	}
	t := &Transport{
		local: local,
		certs: &certSource{id: identity, identity: encoded, reuse: reuse, now: now},
		now:   now,
	}
	switch n := cfg.VerifiedCacheSize; {
	case n == 0:
		t.verified = newVerifiedCache(DefaultVerifiedCacheSize)
	case n > 0:
		t.verified = newVerifiedCache(n)
	}
	switch n := cfg.SessionCacheSize; {
	case n == 0:
		t.sessions = newLRU[peer.ID, sessionEntry](DefaultSessionCacheSize)
	case n > 0:
		t.sessions = newLRU[peer.ID, sessionEntry](n)
	}
	if t.sessions != nil {
		t.tickets = &ticketKeys{now: now}
	}
	return t, nil
}

// ID returns "/tls/1.0.0".
func (t *Transport) ID() string { return ID }

// LocalPeer is the peer ID of the transport's identity.
func (t *Transport) LocalPeer() peer.ID { return t.local }

// Handshake runs TLS 1.3 on raw, as the client for RoleInitiator and the
// server for RoleResponder. See security.Transport.
func (t *Transport) Handshake(ctx context.Context, raw net.Conn, p security.Params) (security.Conn, error) {
	fail := func(step string, err error) error {
		_ = raw.Close()
		return security.StepError(ctx, ID, step, err)
	}
	if err := p.Validate(); err != nil {
		_ = raw.Close()
		return nil, &security.HandshakeError{Protocol: ID, Step: stepStart, Err: err}
	}
	cert, err := t.certs.get()
	if err != nil {
		return nil, fail(stepCert, err)
	}
	rw := &recordWriter{Conn: raw}
	v := &verifier{now: t.now, cache: t.verified, expected: p.ExpectedPeer, refused: func() {
		// crypto/tls now sends an alert. A peer still writing its own
		// flight does not read it (over a synchronous pipe both would
		// block until the context ends): bound the courtesy.
		_ = raw.SetWriteDeadline(time.Now().Add(alertTimeout))
	}}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// No CA: verifier checks the chain per the libp2p spec.
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
		// Called on every handshake, resumed ones too, with the peer's
		// certificate (from the ticket when resumed).
		VerifyConnection:       v.verifyConn,
		SessionTicketsDisabled: t.sessions == nil,
		NextProtos:             append(slices.Clone(p.Muxers), alpnLibp2p),
		Time:                   t.now,
	}
	var conn *tls.Conn
	if p.Role == network.RoleInitiator {
		// ServerName stays empty: the spec forbids SNI.
		if t.sessions != nil && p.ExpectedPeer != "" {
			cfg.ClientSessionCache = &peerSessions{cache: t.sessions, peer: p.ExpectedPeer, v: v, now: t.now}
		}
		conn = tls.Client(rw, cfg)
	} else {
		if t.sessions != nil {
			if err := t.serveTickets(cfg, rw); err != nil {
				return nil, fail(stepStart, err)
			}
		}
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := cfg.Clone()
			c.NextProtos = selectALPN(hello.SupportedProtos, p.Muxers)
			return c, nil
		}
		conn = tls.Server(rw, cfg)
	}

	// Finished as ctx ended: the connection is kept, Stop lifts the
	// deadline ctx set.
	b := ctxconn.Bind(ctx, raw)
	err = conn.Handshake()
	b.Stop()
	if err != nil {
		if v.err != nil && !errors.Is(err, v.err) {
			err = fmt.Errorf("%w (%w)", v.err, err)
		}
		return nil, fail(stepHandshake, err)
	}
	if v.key == nil {
		// Unreachable with RequireAnyClientCert and a client always
		// receiving the server's certificate; never accept a peer
		// unauthenticated.
		return nil, fail(stepFinish, fmt.Errorf("%w: the peer presented no certificate", ErrBadCertificate))
	}
	muxer := conn.ConnectionState().NegotiatedProtocol
	if muxer == alpnLibp2p {
		muxer = ""
	}
	rw.handshakeDone()
	return &Conn{tls: conn, raw: rw, local: t.local, remote: v.id, remoteKey: v.key, muxer: muxer}, nil
}

// selectALPN is the server's choice (inlined-muxer-negotiation.md, "over
// TLS"): the first of the client's protocols it supports, a muxer or the
// final "libp2p". With no match it returns all its protocols, and
// crypto/tls then aborts the handshake (no_application_protocol), as the
// TLS spec requires.
func selectALPN(client, muxers []string) []string {
	for _, c := range client {
		if c == alpnLibp2p || slices.Contains(muxers, c) {
			return []string{c}
		}
	}
	return append(slices.Clone(muxers), alpnLibp2p)
}

// verifier checks the peer's certificate inside the TLS handshake and keeps
// what it learned. It runs on the handshake's goroutine.
type verifier struct {
	now      func() time.Time
	cache    *verifiedCache // may be nil
	expected peer.ID

	// refused runs when the certificate is refused, before crypto/tls
	// sends its alert.
	refused func()

	key      peer.PubKey
	id       peer.ID
	notAfter time.Time
	resumed  bool
	err      error
}

func (v *verifier) verifyConn(cs tls.ConnectionState) error {
	v.err = v.check(cs.PeerCertificates)
	if v.err != nil {
		v.refused()
	}
	v.resumed = cs.DidResume
	return v.err
}

func (v *verifier) check(certs []*x509.Certificate) error {
	got, err := v.cache.verifyCerts(certs, v.now())
	if err != nil {
		return err
	}
	if v.expected != "" && got.id != v.expected {
		return &security.PeerIDMismatchError{Expected: v.expected, Got: got.id}
	}
	v.key, v.id, v.notAfter = got.key, got.id, got.notAfter
	return nil
}
