package upgrader

import (
	"errors"
	"fmt"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/simopen"
)

// Stage names a step of the upgrade. It appears in errors and events.
//
//	admission → simopen → security → muxer → (done)
type Stage uint8

const (
	// StageAdmission: the listener's limits and the accept-time gater.
	StageAdmission Stage = iota + 1
	// StageSimopen: initiator election and security protocol selection.
	StageSimopen
	// StageSecurity: the Noise or TLS handshake and the secured gater hook.
	StageSecurity
	// StageMuxer: muxer selection (inlined or over multistream), the
	// session, and the post-muxer gater hook.
	StageMuxer
)

func (s Stage) String() string {
	switch s {
	case StageAdmission:
		return "admission"
	case StageSimopen:
		return "simopen"
	case StageSecurity:
		return "security"
	case StageMuxer:
		return "muxer"
	}
	return fmt.Sprintf("Stage(%d)", uint8(s))
}

// Sentinel conditions, checked with errors.Is on an upgrade error. Those
// that lower layers define are the same values, so errors.Is works with
// either name.
var (
	// ErrHandshakeTimeout: a stage or the whole upgrade ran past its
	// deadline. The *Error's Stage says which stage was waiting.
	ErrHandshakeTimeout = security.ErrHandshakeTimeout
	// ErrPeerIDMismatch: the authenticated peer is not the one dialed.
	ErrPeerIDMismatch = security.ErrPeerIDMismatch
	// ErrSimopenTie: both dialers drew the same election number and the
	// tie could not be broken by peer ID. Retry after a randomized delay
	// (simopen.Backoff).
	ErrSimopenTie = simopen.ErrSimopenTie
	// ErrPeerWithoutSimopen: a TCP simultaneous open with a peer that does
	// not speak simopen (go-libp2p, js-libp2p): both sides dialed, the
	// peer proposed its protocol where an answer was due, and both fail.
	// Redial after a randomized delay (simopen.Backoff); the redial is an
	// ordinary dial.
	ErrPeerWithoutSimopen = simopen.ErrPeerWithoutSimopen
	// ErrNoCommonProtocol: the peers share no security protocol or no
	// muxer.
	ErrNoCommonProtocol = errors.New("upgrader: no common protocol")
	// ErrAdmissionRefused: an inbound connection was over a listener limit
	// and was closed without a handshake.
	ErrAdmissionRefused = errors.New("upgrader: admission refused")
	// ErrEvicted: an inbound upgrade was ended to make room for a newer
	// connection while the listener was full: it had made the least
	// progress of the unauthenticated upgrades in flight.
	ErrEvicted = fmt.Errorf("%w: evicted by a newer connection (least progress while the listener was full)", ErrAdmissionRefused)
	// ErrFirstByteTimeout: an inbound connection sent nothing within
	// Config.FirstByteTimeout; a dialer speaks first. It matches
	// ErrHandshakeTimeout too.
	ErrFirstByteTimeout = fmt.Errorf("%w: the peer sent nothing within the first-byte timeout", ErrHandshakeTimeout)
	// ErrGated: the connection gater refused the connection.
	ErrGated = errors.New("upgrader: refused by connection gater")
	// ErrClosed: the listener is closed.
	ErrClosed = errors.New("upgrader: listener closed")
)

// Error is the error an upgrade returns: the stage that failed, the remote
// side as far as it is known, and the cause.
type Error struct {
	Stage Stage
	// Remote is the remote transport address ("" if unknown).
	Remote string
	// RemotePeer is the expected or authenticated remote peer, "" if unknown.
	RemotePeer peer.ID
	Err        error
}

func (e *Error) Error() string {
	who := e.Remote
	if e.RemotePeer != "" {
		if who != "" {
			who += " "
		}
		who += "peer " + e.RemotePeer.ShortString()
	}
	if who == "" {
		who = "unknown remote"
	}
	return fmt.Sprintf("upgrader: %s stage with %s: %v", e.Stage, who, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
