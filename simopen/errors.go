package simopen

import (
	"errors"
	"fmt"
)

var (
	// ErrSimopenTie: both sides drew the same election number and at
	// least one of them does not know both peer IDs, so no side can be
	// chosen. The connection is unusable; the dialer should close it and
	// retry after a randomized delay (see Backoff). The probability per
	// election is 2^-64.
	ErrSimopenTie = errors.New("simopen: election tie and no peer IDs to break it")

	// ErrPeerWithoutSimopen: this side dialed, and where "na" or the
	// extension's token was due the peer proposed a protocol of its own:
	// it dialed too (a TCP simultaneous open, both sides dialing from
	// their listen ports) and does not speak the extension — go-libp2p
	// since go-multistream v0.5, js-libp2p, rust-libp2p. It fails its side
	// as well when it reads our token where the answer to its proposal
	// was due, so the connection cannot be saved. The dialer should close
	// it and redial after a jittered delay (Backoff): the peer's dial has
	// failed by then, and the redial is an ordinary dial that the peer
	// accepts. The error wrapping it quotes the peer's proposal.
	ErrPeerWithoutSimopen = errors.New("simopen: the peer dialed too and does not speak simultaneous-connect")

	// ErrNoCommonProtocol: the peer answered "na" to every protocol we
	// proposed, or as election responder we refused every protocol the
	// peer proposed.
	ErrNoCommonProtocol = errors.New("simopen: no common security protocol")

	// ErrMalformedToken: the peer sent bytes that are not a valid
	// multistream-select token: a non-minimal or oversized length prefix,
	// an empty token, a token longer than the limit, a missing trailing
	// newline or invalid UTF-8. The error wrapping it says which.
	ErrMalformedToken = errors.New("simopen: malformed token")

	// ErrInvalidConfig: the Config cannot be used (no protocols, or a
	// protocol ID that is empty, too long or collides with a token of the
	// extension).
	ErrInvalidConfig = errors.New("simopen: invalid config")
)

// ProtocolError reports a well-formed token that the protocol does not
// allow at that point: Expected describes what was due, Got is the token
// received.
type ProtocolError struct {
	Expected string
	Got      string
}

// maxQuoted bounds how much of a peer-controlled token an error message
// echoes.
const maxQuoted = 64

func (e *ProtocolError) Error() string {
	got := e.Got
	if len(got) > maxQuoted {
		got = got[:maxQuoted] + "…"
	}
	return fmt.Sprintf("simopen: protocol error: expected %s, got %q", e.Expected, got)
}

// PipelineError is a failure of the stage found after Dial returned: a
// pipelined initiator (Result.Pipelined) checks the peer's "responder" and
// its answer to the proposal on the first Read of the returned conn, and
// sends its held tokens with the first Write, both inside the security
// handshake. Such an error reaches the caller through the handshake's
// error; errors.As finds it there, so the failure is still reported as the
// simopen stage's.
type PipelineError struct{ Err error }

func (e *PipelineError) Error() string { return e.Err.Error() }
func (e *PipelineError) Unwrap() error { return e.Err }
