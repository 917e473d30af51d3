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
