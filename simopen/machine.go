package simopen

import (
	"fmt"
	"io"
	"strings"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
)

// Election records how an election between two dialers ended, for events
// and logs.
type Election struct {
	// Local and Remote are the numbers this side and the peer sent.
	Local, Remote uint64
	// TieBreak is true when the numbers were equal and the peer-ID order
	// decided.
	TieBreak bool
}

// Result is the outcome of the simopen stage.
type Result struct {
	// Role is the part this side plays from now on.
	Role network.Role
	// Protocol is the selected security protocol.
	Protocol string
	// Election is nil when no election happened (the peer answered "na",
	// or this side accepted the connection).
	Election *Election
	// Pipelined is true when this side won an election and the peer had
	// itself proposed Protocol: the "initiator" token and the proposal are
	// then held back and sent with the first write of the security
	// handshake, and the returned conn's first Read checks the peer's
	// "responder" and echo before passing data through.
	Pipelined bool
}

// state is a position of the dialed side's state machine; see the diagram
// in doc.go and spec/simopen.md.
type state uint8

const (
	stateHeader         state = iota // awaiting /multistream/1.0.0
	stateTokenAnswer                 // awaiting "na" or the simopen token
	stateProposalAnswer              // awaiting the echo of, or "na" to, protos[next]
	stateSkipProposal                // election: skipping the peer's pipelined proposal
	stateSelect                      // election: awaiting "select:<n>"
	stateResponderToken              // election initiator: awaiting "responder"
	stateInitiatorToken              // election responder: awaiting "initiator"
	stateServe                       // election responder: answering the peer's proposals
	stateDone                        // result available
	stateFailed                      // err set; no more input accepted
)

func (s state) String() string {
	switch s {
	case stateHeader:
		return "header"
	case stateTokenAnswer:
		return "token-answer"
	case stateProposalAnswer:
		return "proposal-answer"
	case stateSkipProposal:
		return "skip-proposal"
	case stateSelect:
		return "select"
	case stateResponderToken:
		return "responder-token"
	case stateInitiatorToken:
		return "initiator-token"
	case stateServe:
		return "serve"
	case stateDone:
		return "done"
	case stateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// machine is the dialed side of the simopen stage without I/O: it is fed
// the peer's tokens one at a time and queues the writes to send, each of
// which must go out in one Write so that pipelined tokens share a segment.
// It draws no randomness: the election number is an input.
type machine struct {
	protos        []string
	local, remote peer.ID
	nonce         uint64

	state     state
	next      int    // index in protos of the proposal awaiting an answer
	rejected  int    // proposals answered "na" in stateServe
	peerFirst string // the peer's pipelined proposal, skipped in an election

	writes [][]byte // queued writes, oldest first
	held   []byte   // pipelined bytes awaiting the first handshake write
	res    Result
	err    error
}

// newMachine returns the machine of a side that dialed, with its opening
// write queued: the header, the simopen token and the first proposal.
// protos must have passed Config.validate.
func newMachine(protos []string, local, remote peer.ID, nonce uint64) *machine {
	m := &machine{protos: protos, local: local, remote: remote, nonce: nonce}
	m.emit(ProtocolHeader, ProtocolID, protos[0])
	return m
}

func (m *machine) emit(toks ...string) { m.writes = append(m.writes, encodeTokens(toks...)) }

// output returns the queued writes and forgets them.
func (m *machine) output() [][]byte {
	w := m.writes
	m.writes = nil
	return w
}

// handoff reports whether the adapter may return: the stage is done, or
// this side is a pipelined initiator whose remaining checks travel with
// the returned conn.
func (m *machine) handoff() bool {
	return m.state == stateDone || (m.res.Pipelined && m.state != stateFailed)
}

// takeHeld returns the pipelined bytes and forgets them.
func (m *machine) takeHeld() []byte {
	h := m.held
	m.held = nil
	return h
}

// fail records err and moves to stateFailed.
func (m *machine) fail(err error) error {
	m.state, m.err = stateFailed, err
	return err
}

// receive processes one token from the peer.
func (m *machine) receive(tok string) error {
	switch m.state {
	case stateHeader:
		if tok != ProtocolHeader {
			return m.fail(&ProtocolError{Expected: quote(ProtocolHeader), Got: tok})
		}
		m.state = stateTokenAnswer

	case stateTokenAnswer:
		switch tok {
		case TokenNA: // a plain responder: we initiate, as in multistream-select
			m.res.Role = network.RoleInitiator
			m.state = stateProposalAnswer
		case ProtocolID: // the peer dialed too
			m.emit(formatSelect(m.nonce))
			m.state = stateSkipProposal
		default:
			if strings.HasPrefix(tok, "/") {
				// A protocol proposal: the peer is a multistream-select
				// dialer itself (spec/simopen.md 3.7).
				return m.fail(fmt.Errorf("%w: it proposed %s", ErrPeerWithoutSimopen, quoteTrimmed(tok)))
			}
			return m.fail(&ProtocolError{Expected: quote(TokenNA) + " or " + quote(ProtocolID), Got: tok})
		}

	case stateProposalAnswer:
		switch tok {
		case m.protos[m.next]:
			m.res.Protocol = tok
			m.state = stateDone
		case TokenNA:
			if m.res.Pipelined {
				// The peer proposed this protocol itself; refusing it
				// now is a contradiction, and our handshake is already
				// on its way.
				return m.fail(&ProtocolError{Expected: quote(m.protos[m.next]) + " (the peer proposed it)", Got: tok})
			}
			m.next++
			if m.next == len(m.protos) {
				return m.fail(fmt.Errorf("%w: the peer refused all of %q", ErrNoCommonProtocol, m.protos))
			}
			m.emit(m.protos[m.next])
		default:
			return m.fail(&ProtocolError{Expected: quote(m.protos[m.next]) + " or " + quote(TokenNA), Got: tok})
		}

	case stateSkipProposal:
		// Exactly one token, whatever it is: the reference
		// implementation pipelines exactly one proposal.
		m.peerFirst = tok
		m.state = stateSelect

	case stateSelect:
		n, ok := parseSelect(tok)
		if !ok {
			return m.fail(&ProtocolError{Expected: quote(SelectPrefix + "<decimal uint64>"), Got: tok})
		}
		return m.elect(n)

	case stateResponderToken:
		if tok != TokenResponder {
			return m.fail(&ProtocolError{Expected: quote(TokenResponder), Got: tok})
		}
		m.state = stateProposalAnswer

	case stateInitiatorToken:
		if tok != TokenInitiator {
			return m.fail(&ProtocolError{Expected: quote(TokenInitiator), Got: tok})
		}
		m.state = stateServe

	case stateServe:
		for _, p := range m.protos {
			if tok == p {
				m.emit(p)
				m.res.Protocol = p
				m.state = stateDone
				return nil
			}
		}
		m.rejected++
		if m.rejected > maxRejected {
			return m.fail(fmt.Errorf("%w: refused %d proposals, the limit", ErrNoCommonProtocol, maxRejected))
		}
		m.emit(TokenNA)

	case stateDone, stateFailed:
		panic("simopen: machine fed after " + m.state.String()) // a bug in the adapter
	}
	return nil
}

// elect decides the roles from the peer's number.
func (m *machine) elect(remote uint64) error {
	e := &Election{Local: m.nonce, Remote: remote}
	m.res.Election = e
	var initiator bool
	switch {
	case m.nonce > remote:
		initiator = true
	case m.nonce < remote:
		initiator = false
	case m.local != "" && m.remote != "" && m.local != m.remote:
		e.TieBreak = true
		initiator = m.local > m.remote
	default:
		return m.fail(fmt.Errorf("%w: both sent %d", ErrSimopenTie, remote))
	}
	if !initiator {
		m.res.Role = network.RoleResponder
		m.emit(TokenResponder)
		m.state = stateInitiatorToken
		return nil
	}
	m.res.Role = network.RoleInitiator
	m.state = stateResponderToken
	// Unlike the reference, which waits for "responder" before
	// proposing, we propose in the same write: the peer reads proposals
	// right after "initiator" either way.
	if m.peerFirst == m.protos[0] {
		// The peer is known to support protos[0]: hold the write back
		// so it leaves with the first handshake message.
		m.res.Pipelined = true
		m.res.Protocol = m.protos[0]
		m.held = encodeTokens(TokenInitiator, m.protos[0])
		return nil
	}
	m.emit(TokenInitiator, m.protos[0])
	return nil
}

// eof reports the peer closing its side while the machine awaited more.
func (m *machine) eof() error {
	if m.state == stateServe {
		return m.fail(fmt.Errorf("%w: the peer closed after %d refused proposals", ErrNoCommonProtocol, m.rejected))
	}
	return m.fail(fmt.Errorf("simopen: peer closed the connection in state %s: %w", m.state, io.ErrUnexpectedEOF))
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// quoteTrimmed quotes a peer-controlled token, at most maxQuoted bytes of it.
func quoteTrimmed(s string) string {
	if len(s) > maxQuoted {
		return quote(s[:maxQuoted]) + "…"
	}
	return quote(s)
}
