// Package conformance is a spec conformance suite for libp2p peers over TCP:
// a runner that plays scripted, often adversarial, cases against a target
// and reports, per case, the spec rule, what the rule expects, what was
// observed, and pass, fail or not applicable.
//
// Who should use it: implementers of libp2p (any language) who want to know
// whether their peer obeys multistream-select, the simultaneous-open
// extension, Noise, TLS and yamux as specified, and Concord's own tests.
// The command-line front end is "concord conformance"; most users want that.
//
// # Specifications
//
// The rules the cases cite are numbered in the repository's spec/ documents:
// multistream.md, simopen.md, noise.md, tls.md and yamux.md. Each case names
// one or more ("multistream 2.5"). Byte-exact vectors of the same rules are
// in spec/vectors/ and are replayed by this package's tests.
//
// # Cases
//
// A case is a JSON file in cases/ (embedded; see Case and Step): an id, a
// rule, a mode, a summary, the expectation, and a list of steps such as
// "send these tokens", "read this token", "the target must close within the
// deadline", "run a Noise handshake with a bad signature", "send these yamux
// frames", "expect one of these frames". Adding a case of an existing kind is
// adding a file. Mutations that need code (a payload, a certificate) are
// named by a string the step carries.
//
// Dial cases connect to Runner.Target. Listen cases wait on Runner.Listener
// for the target to dial the runner's peer ID (Runner.Trigger can make it
// dial); without a listener they are not applicable, as are cases needing a
// protocol the target does not offer (it answered na) or a peer ID that is
// not known.
//
// # Deadlines and cancellation
//
// Every wait is bounded: AnswerTimeout (5 s) for each answer, StageTimeout
// (20 s) for the cases that check that the target drops a stalled
// handshake. Every loop is bounded in count too. Cancelling Run's context
// ends the current case as a failure and returns the results so far. Run
// joins every goroutine it starts, Trigger's included, before it returns.
//
// # Limits
//
// TCP only (no QUIC, WebSocket or WebTransport). The runner's Noise and TLS
// are its own (flynn/noise, crypto/tls), so that it can send what a correct
// peer never would; Concord's security packages are not used to judge
// Concord. Yamux checks look at frames only; no muxer library is used. A
// handful of cases record behaviour the specs leave open (their rule says
// "unspecified") and pass either way; the observed column says which.
package conformance
