// Package tls implements libp2p TLS, the channel-security handshake
// negotiated as "/tls/1.0.0", on the standard library's crypto/tls, for
// Concord's upgrader.
//
// # Specifications
//
//   - libp2p/specs tls/tls.md (r0 2019-03-23, Recommendation, with its
//     "Test vectors" section): TLS 1.3 only; each side presents exactly one
//     self-signed certificate carrying the libp2p Public Key Extension
//     (OID 1.3.6.1.4.1.53594.1.1), SignedKey{publicKey, signature} where
//     publicKey is the PublicKey protobuf of the identity key and
//     signature signs "libp2p-tls-handshake:" || the certificate's
//     SubjectPublicKeyInfo; clients send no SNI; ALPN "libp2p".
//   - libp2p/specs connections/inlined-muxer-negotiation.md (r1
//     2022-12-07), "over TLS": the client's ALPN list is its muxers in
//     preference order followed by "libp2p"; the server picks the first
//     entry it supports. "libp2p" chosen means no muxer was agreed
//     (Conn.Muxer is "") and the upgrader negotiates one with
//     multistream-select.
//
// # Verification
//
// Both sides require the peer's certificate (the server demands one from
// the client) and check, inside the TLS handshake: exactly one certificate;
// valid now; its self-signature (x509 refuses MD5 and SHA-1); no critical
// extension other than libp2p's (unknown non-critical ones are ignored);
// the libp2p extension present once; its identity key accepted by
// peer.UnmarshalPublicKey (RSA outside 2048–8192 bits is refused) and its
// signature valid; the peer ID equal to Params.ExpectedPeer when given
// (either role may give it). crypto/tls checks that the peer holds the
// certificate key, and x509 parsing refuses elliptic curves not given by
// name. These checks run in crypto/tls's VerifyConnection, so they also
// run on a resumed handshake, against the certificate the session was
// made with.
//
// With TLS 1.3 the client finishes its handshake before the server has
// checked the client's certificate: a client the server refuses sees its
// first read fail ("remote error: tls: bad certificate"), not its
// Handshake call.
//
// # Deliberate choices and deviations
//
//   - SignedKey is decoded as a SEQUENCE of two OCTET STRINGs, in strict
//     DER. The spec's ASN.1 text says BIT STRING, but its test vectors, and
//     every implementation, use OCTET STRING.
//   - Disjoint muxer lists do not fail the handshake: "libp2p" is common to
//     both ALPN lists, so the server picks it, as the inlined-muxer spec
//     says for TLS. (Noise, unlike TLS, fails; see package noise.)
//   - Our certificate: a P-256 ECDSA key signed with ECDSA-SHA256, valid
//     from one hour ago (for peers whose clock is behind) for 100 years (the
//     key is ephemeral, so expiry protects nothing, and a peer with a wrong
//     clock must not refuse it). The libp2p extension is not marked
//     critical, like the spec's vectors.
//   - After refusing the peer's certificate, the alert crypto/tls sends is
//     bounded to 250 ms, and so is the close_notify sent by Close: a peer
//     that is not reading must not hold a failed handshake, or Close, for
//     seconds.
//
// # Defaults
//
// One certificate key and certificate serve an hour of handshakes
// (DefaultReuseCertificateFor, as go-libp2p reuses one for the life of its
// transport; the spec allows both); Config.ReuseCertificateFor < 0 makes
// one per connection.
//
// # VerifiedCache
//
// A peer certificate that passed verification is remembered (up to
// DefaultVerifiedCacheSize, least recently used out first) by the SHA-256
// of its DER bytes. When a peer presents the same bytes again, the parse,
// the self-signature and the identity signature are skipped: identical
// bytes verify identically. The validity window and the expected peer ID
// are checked on every handshake, and crypto/tls checks CertificateVerify,
// which proves the peer holds the certificate's key. A refused certificate
// is never stored. Config.VerifiedCacheSize < 0 turns the cache off.
//
// # Resumption
//
// Between Concord peers a reconnection resumes the TLS 1.3 session
// (RFC 8446 section 2.2, psk_dhe_ke: a fresh key exchange, so forward
// secrecy is kept), which skips both certificates and both
// CertificateVerify signatures: about a fifth of the handshake's CPU
// (BenchmarkHandshake). The libp2p TLS spec neither requires nor forbids
// resumption; go-libp2p disables it. The rules:
//
//   - A server issues one ticket per full handshake, encrypted with
//     ticket keys of its own Transport (a new key every 24 hours, the one
//     before still accepted; a restarted process has new keys, so old
//     tickets give a full handshake). Every ticket starts with a Concord
//     marker, and records when the client's certificate expires; an
//     expired one is not resumed.
//   - A client keeps only tickets that carry the marker (so it never
//     offers one to go-libp2p or js-libp2p), one per peer ID, up to
//     Config.SessionCacheSize (least recently used out first), and offers
//     a ticket only when it dials the peer ID that issued it
//     (Params.ExpectedPeer). Dialing without an expected peer never
//     resumes.
//   - On a resumed handshake both sides still check the peer's
//     certificate (from the session) as above: validity, the expected
//     peer ID.
//   - A client that offers resumption makes servers that are not
//     Concord's send their own tickets too (Node's does); they are
//     dropped.
//
// Config.SessionCacheSize < 0 turns resumption off in both roles.
//
// # Connections
//
// The *Conn is crypto/tls's connection with the peer's identity. Reads and
// writes are safe from concurrent goroutines. Unlike a bare tls.Conn, a
// write that times out leaves the connection usable (its encrypted records
// go out first in the next write), so the connection passes
// nettest.TestConn. Close is idempotent.
//
// # Cancellation
//
// Cancelling the Handshake context, or its deadline, sets a past deadline
// on the raw connection; the handshake fails with a *security.HandshakeError
// and the raw connection is closed. After Handshake returns the context no
// longer matters.
package tls
