// Package security defines the contract between Concord's upgrader and its
// channel-security handshakes: the [Transport] interface, the authenticated
// [Conn] it returns, the handshake [Params], and the errors every handshake
// reports.
//
// Two implementations live below it: security/noise (libp2p Noise, protocol
// ID "/noise") and security/tls (libp2p TLS 1.3, protocol ID "/tls/1.0.0").
// Almost no user needs to call a Transport directly; the upgrader does, after
// the simultaneous-open stage has elected the roles and multistream-select
// has agreed on the protocol.
//
// # Roles
//
// A handshake is run with a [network.Role], never with the TCP direction:
// after a TCP simultaneous open both ends dialed, and the election decides
// which of them is the Noise initiator or the TLS client.
//
// # Cancellation
//
// Cancelling the context passed to Handshake, or passing its deadline,
// unblocks the handshake's I/O at once (a past deadline is set on the raw
// connection) and the handshake returns a [*HandshakeError] naming the step
// that was waiting. A deadline ending the handshake matches both
// [ErrHandshakeTimeout] and [context.DeadlineExceeded] under errors.Is. A
// failed handshake always closes the raw connection. Once Handshake has
// returned a Conn, the context no longer affects it.
//
// # Inlined muxer negotiation
//
// Params.Muxers lists the stream multiplexers this side offers, most
// preferred first (libp2p connections/inlined-muxer-negotiation.md, r1
// 2022-12-07). Conn.Muxer reports the one agreed inside the handshake, or ""
// when none was (an empty list on either side, or TLS's "libp2p" fallback);
// the upgrader then negotiates the muxer with multistream-select.
//
// # Errors
//
// A failed handshake returns a *HandshakeError (protocol, step, cause).
// Conditions are checked with errors.Is: ErrHandshakeTimeout,
// ErrPeerIDMismatch (errors.As gives a *PeerIDMismatchError carrying the
// expected and the authenticated peer ID), ErrInvalidSignature,
// ErrNoCommonMuxer, ErrProtocol, ErrIdentityKey, ErrInvalidParams; the
// transports add their own (noise.ErrDecrypt, tls.ErrBadCertificate, ...).
//
// Handshakes never log and never recover from panics.
//
// # Testing a transport
//
// security/internal/sectest is the suite both transports run: every
// identity key type against every other over net.Pipe and loopback TCP,
// with and without the expected peer ID, the muxer-list cases, and
// nettest.TestConn on the secured connection.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package security
