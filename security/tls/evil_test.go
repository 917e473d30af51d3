package tls

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// certSpec describes a certificate an evil peer presents; the zero value
// plus an identity is a valid libp2p certificate.
type certSpec struct {
	identity peer.PrivKey
	// extValue replaces the extension's value when set.
	extValue []byte
	// signSPKI replaces the SubjectPublicKeyInfo the identity signs.
	signSPKI []byte
	noExt    bool
	critical bool
	// extra extensions, for instance an unknown critical one.
	extra     []pkix.Extension
	notBefore time.Time
	notAfter  time.Time
}

func (s certSpec) make(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if !s.notBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = s.notBefore, s.notAfter
	}
	if !s.noExt {
		value := s.extValue
		if value == nil {
			signed := spki
			if s.signSPKI != nil {
				signed = s.signSPKI
			}
			pub, err := peer.MarshalPublicKey(s.identity.Public())
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.identity.Sign(append([]byte(certificatePrefix), signed...))
			if err != nil {
				t.Fatal(err)
			}
			value, _ = asn1.Marshal(signedKey{PublicKey: pub, Signature: sig})
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: extensionOID, Critical: s.critical, Value: value})
	}
	tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, s.extra...)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// runAgainstEvil runs our side (role) against a bare crypto/tls peer that
// presents cert, and returns our handshake error after checking that our
// raw connection was closed.
func runAgainstEvil(t *testing.T, role network.Role, p security.Params, cert tls.Certificate) error {
	t.Helper()
	ours, theirs := net.Pipe()
	defer theirs.Close()
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		InsecureSkipVerify: true,
		ClientAuth:         tls.RequireAnyClientCert,
		NextProtos:         []string{alpnLibp2p},
	}
	var evil *tls.Conn
	if role == network.RoleInitiator {
		evil = tls.Server(theirs, cfg)
	} else {
		evil = tls.Client(theirs, cfg)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if evil.Handshake() == nil {
			io.Copy(io.Discard, evil)
		}
		theirs.Close()
	}()
	p.Role = role
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{}).Handshake(ctx, ours, p)
	if err == nil {
		c.Close()
		<-done
		t.Fatalf("handshake succeeded, want an error")
	}
	t.Logf("error: %v", err)
	var he *security.HandshakeError
	if !errors.As(err, &he) || he.Protocol != ID {
		t.Errorf("error %v (%T): want a *security.HandshakeError for %s", err, err, ID)
	}
	sectest.AssertClosed(t, "our raw conn", ours)
	<-done
	return err
}

// bothRoles runs a certificate case against our client and our server.
func bothRoles(t *testing.T, p security.Params, spec certSpec, want ...error) {
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run(role.String(), func(t *testing.T) {
			err := runAgainstEvil(t, role, p, spec.make(t))
			for _, w := range want {
				if !errors.Is(err, w) {
					t.Errorf("error %v: want errors.Is(err, %v)", err, w)
				}
			}
		})
	}
}

// tlsConfigForEvil serves one TLS 1.3 handshake with a chosen certificate,
// and checks that the client sent no SNI.
type tlsConfigForEvil struct {
	cert tls.Certificate
}

func (e *tlsConfigForEvil) serve(c net.Conn) error {
	defer c.Close()
	var sni string
	srv := tls.Server(c, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{e.cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{alpnLibp2p},
		// As go-libp2p: a ticket written at the end of Handshake would
		// wait for a client that is not reading (over a pipe).
		SessionTicketsDisabled: true,
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			sni = h.ServerName
			return nil, nil
		},
	})
	if err := srv.Handshake(); err != nil {
		return err
	}
	if sni != "" {
		return errors.New("client sent SNI " + sni)
	}
	_, err := io.Copy(io.Discard, srv)
	return err
}
