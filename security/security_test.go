package security

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/network"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStepErrorDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	<-ctx.Done()
	err := error(StepError(ctx, "/noise", "reading message 2", os.ErrDeadlineExceeded))
	for _, want := range []error{ErrHandshakeTimeout, context.DeadlineExceeded} {
		if !errors.Is(err, want) {
			t.Errorf("error %v: want errors.Is(err, %v)", err, want)
		}
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error %v: want a net.Error with Timeout() true", err)
	}
	var he *HandshakeError
	if !errors.As(err, &he) || he.Step != "reading message 2" || he.Protocol != "/noise" {
		t.Errorf("error %v: want a HandshakeError naming protocol and step", err)
	}
}

func TestStepErrorCancelCause(t *testing.T) {
	cause := errors.New("upgrader shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := StepError(ctx, "/tls/1.0.0", "TLS 1.3 handshake", os.ErrDeadlineExceeded)
	if !errors.Is(err, cause) || errors.Is(err, ErrHandshakeTimeout) {
		t.Errorf("error %v: want the cancel cause and no timeout", err)
	}
}

func TestStepErrorRawDeadline(t *testing.T) {
	// A deadline the caller put on the raw conn is a timeout too.
	err := StepError(context.Background(), "/noise", "x", fmt.Errorf("read: %w", os.ErrDeadlineExceeded))
	if !errors.Is(err, ErrHandshakeTimeout) || !err.Timeout() {
		t.Errorf("error %v: want ErrHandshakeTimeout", err)
	}
	plain := StepError(context.Background(), "/noise", "x", ErrProtocol)
	if errors.Is(plain, ErrHandshakeTimeout) || plain.Timeout() {
		t.Errorf("error %v: a protocol error is not a timeout", plain)
	}
}

func TestPeerIDMismatchError(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &PeerIDMismatchError{Expected: "a", Got: "b"})
	var me *PeerIDMismatchError
	if !errors.Is(err, ErrPeerIDMismatch) || !errors.As(err, &me) || me.Expected != "a" || me.Got != "b" {
		t.Errorf("error %v: want ErrPeerIDMismatch carrying both IDs", err)
	}
}

func TestParamsValidate(t *testing.T) {
	long := string(make([]byte, MaxMuxerNameLen+1))
	many := make([]string, MaxMuxers+1)
	for i := range many {
		many[i] = "/m"
	}
	for _, tc := range []struct {
		name string
		p    Params
		ok   bool
	}{
		{"initiator", Params{Role: network.RoleInitiator}, true},
		{"responder with muxers", Params{Role: network.RoleResponder, Muxers: []string{"/yamux/1.0.0"}}, true},
		{"unknown role", Params{}, false},
		{"empty muxer", Params{Role: network.RoleInitiator, Muxers: []string{""}}, false},
		{"long muxer", Params{Role: network.RoleInitiator, Muxers: []string{long}}, false},
		{"too many muxers", Params{Role: network.RoleInitiator, Muxers: many}, false},
	} {
		err := tc.p.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalidParams)) {
			t.Errorf("%s: Validate() = %v, want ok=%v (ErrInvalidParams otherwise)", tc.name, err, tc.ok)
		}
	}
}
