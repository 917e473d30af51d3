package security

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
)

// Bounds on the inlined muxer lists, shared by both transports. A list or a
// name beyond them in Params is refused before any I/O; one received from the
// peer fails the handshake.
const (
	MaxMuxers       = 100
	MaxMuxerNameLen = 1024
)

// Transport is one channel-security protocol.
type Transport interface {
	// ID is the protocol ID negotiated with multistream-select, for
	// instance "/noise".
	ID() string

	// Handshake secures raw as the side p.Role and authenticates the remote
	// peer. On failure raw is closed and the error is a *HandshakeError. On
	// success raw belongs to the returned Conn. See the package doc for the
	// context rules.
	Handshake(ctx context.Context, raw net.Conn, p Params) (Conn, error)
}

// Params are the per-connection inputs of a handshake. The local identity is
// given to the transport when it is built.
type Params struct {
	// Role is this side's role: RoleInitiator or RoleResponder. Any other
	// value fails the handshake with ErrInvalidParams.
	Role network.Role

	// ExpectedPeer, when not empty, is the only remote peer ID accepted;
	// another one fails the handshake with a *PeerIDMismatchError. Either
	// role may set it.
	ExpectedPeer peer.ID

	// Muxers are the stream multiplexer protocol IDs offered, most
	// preferred first; empty offers none. At most MaxMuxers names of 1 to
	// MaxMuxerNameLen bytes.
	Muxers []string
}

// Validate checks p's role and muxer list.
func (p Params) Validate() error {
	if p.Role != network.RoleInitiator && p.Role != network.RoleResponder {
		return fmt.Errorf("%w: role %v", ErrInvalidParams, p.Role)
	}
	if len(p.Muxers) > MaxMuxers {
		return fmt.Errorf("%w: %d muxers offered, at most %d", ErrInvalidParams, len(p.Muxers), MaxMuxers)
	}
	for i, m := range p.Muxers {
		if len(m) == 0 || len(m) > MaxMuxerNameLen {
			return fmt.Errorf("%w: muxer %d is %d bytes long, want 1 to %d", ErrInvalidParams, i, len(m), MaxMuxerNameLen)
		}
	}
	return nil
}

// Conn is an authenticated, encrypted connection.
type Conn interface {
	net.Conn

	// LocalPeer is this side's peer ID.
	LocalPeer() peer.ID
	// RemotePeer is the authenticated remote peer ID.
	RemotePeer() peer.ID
	// RemotePublicKey is the remote identity key the handshake verified.
	RemotePublicKey() peer.PubKey
	// Protocol is the security protocol ID, the Transport's ID.
	Protocol() string
	// Muxer is the stream multiplexer agreed inside the handshake, or ""
	// when none was agreed there.
	Muxer() string
}

// Conditions a handshake can fail with, checked with errors.Is.
var (
	// ErrHandshakeTimeout: the context's deadline, or a deadline on the
	// raw connection, ended the handshake. An error matching it caused by
	// the context also matches context.DeadlineExceeded.
	ErrHandshakeTimeout = errors.New("security: handshake timed out")

	// ErrPeerIDMismatch: the remote identity is not the expected peer.
	// The error is a *PeerIDMismatchError carrying both IDs.
	ErrPeerIDMismatch = errors.New("security: remote peer ID is not the expected one")

	// ErrInvalidSignature: the remote identity key's signature over the
	// handshake's key (Noise static key, TLS certificate key) does not
	// verify.
	ErrInvalidSignature = errors.New("security: identity signature does not verify")

	// ErrNoCommonMuxer: both sides offered muxers and no name is in both
	// lists (the Noise inlined-muxer spec says the handshake MUST fail).
	ErrNoCommonMuxer = errors.New("security: no stream multiplexer in common")

	// ErrProtocol: the peer sent a message that breaks the protocol
	// (malformed, truncated, oversized, or in the wrong place).
	ErrProtocol = errors.New("security: protocol violation by the peer")

	// ErrIdentityKey: the peer's identity key could not be decoded or is
	// refused (an RSA key outside 2048–8192 bits, an unknown key type).
	// The peer package's error is wrapped as well.
	ErrIdentityKey = errors.New("security: remote identity key refused")

	// ErrInvalidParams: the Params (or the local configuration) are not
	// usable; nothing was sent.
	ErrInvalidParams = errors.New("security: invalid handshake parameters")
)

// PeerIDMismatchError reports an authenticated remote peer that is not the
// one expected. It matches ErrPeerIDMismatch under errors.Is.
type PeerIDMismatchError struct {
	Expected peer.ID
	Got      peer.ID
}

func (e *PeerIDMismatchError) Error() string {
	return fmt.Sprintf("security: remote peer is %s, expected %s", e.Got, e.Expected)
}

// Unwrap returns ErrPeerIDMismatch.
func (e *PeerIDMismatchError) Unwrap() error { return ErrPeerIDMismatch }

// HandshakeError is the error of a failed handshake: the protocol, the step
// that failed or was waiting, and the cause.
type HandshakeError struct {
	// Protocol is the security protocol ID, for instance "/noise".
	Protocol string
	// Step names the handshake step, for instance
	// "reading message 2 (<- e, ee, s, es)".
	Step string
	// Err is the cause.
	Err error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("security %s: %s: %v", e.Protocol, e.Step, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// Timeout reports whether a deadline ended the handshake, so that the error
// also answers net.Error-style checks.
func (e *HandshakeError) Timeout() bool { return errors.Is(e.Err, ErrHandshakeTimeout) }

// timeoutError is a deadline ending a handshake: it matches
// ErrHandshakeTimeout and the cause (context.DeadlineExceeded or
// os.ErrDeadlineExceeded).
type timeoutError struct{ cause error }

func (e *timeoutError) Error() string   { return "handshake timed out: " + e.cause.Error() }
func (e *timeoutError) Unwrap() []error { return []error{ErrHandshakeTimeout, e.cause} }
func (e *timeoutError) Timeout() bool   { return true }

// StepError builds the *HandshakeError for a step of protocol that failed
// with err, for transports implementing this package. When ctx has ended,
// the context's cause replaces err (the I/O error is then only the past
// deadline the context set); a deadline, from ctx or on the raw connection,
// becomes an error matching ErrHandshakeTimeout.
func StepError(ctx context.Context, protocol, step string, err error) *HandshakeError {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		err = &timeoutError{cause: err}
	}
	return &HandshakeError{Protocol: protocol, Step: step, Err: err}
}
