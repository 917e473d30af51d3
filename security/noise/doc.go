// Package noise implements libp2p Noise, the channel-security handshake
// negotiated as "/noise", for Concord's upgrader.
//
// # Specifications
//
//   - libp2p/specs noise/README.md (r2 2020-03-30 plus the
//     NoiseExtensions field of the current revision):
//     Noise_XX_25519_ChaChaPoly_SHA256, messages framed by a 2-byte
//     big-endian length, at most 65535 bytes each; the handshake payload
//     NoiseHandshakePayload{identity_key = 1, identity_sig = 2,
//     extensions = 4}, NoiseExtensions{webtransport_certhashes = 1,
//     stream_muxers = 2}; identity_sig signs
//     "noise-libp2p-static-key:" || the static X25519 public key.
//   - libp2p/specs connections/inlined-muxer-negotiation.md (r1
//     2022-12-07): the responder lists its muxers in message 2, the
//     initiator in message 3; the agreed muxer is the first of the
//     initiator's list that the responder also lists.
//
// The Noise framework itself is github.com/flynn/noise.
//
// # Handshake
//
//	-> e                 initiator: no payload
//	<- e, ee, s, es      responder: identity key, signature, its muxers
//	-> s, se             initiator: identity key, signature, its muxers
//
// Each side checks the other's identity key (peer.UnmarshalPublicKey, so
// RSA outside 2048–8192 bits is refused), the expected peer ID when one is
// given (either role may give it), then the signature. Errors are
// *security.HandshakeError values naming the step; see package security
// for the sentinels.
//
// # Deliberate choices and deviations
//
//   - Disjoint muxer lists fail the handshake with
//     security.ErrNoCommonMuxer when both lists are non-empty, as the
//     inlined-muxer spec says ("If there is no overlap between the
//     multiplexers support by client and server, the handshake MUST
//     fail"). go-libp2p instead completes the handshake and leaves the muxer
//     to multistream-select; against it, Concord fails where go-libp2p would
//     fall back. The initiator detects the case after message 2 and fails
//     without sending message 3. An empty list on either side means no muxer
//     is agreed in the handshake (Conn.Muxer is "").
//   - Message 1 must be exactly the 32-byte ephemeral key: a payload there
//     (which would travel in clear) fails the handshake with
//     security.ErrProtocol.
//   - The payload decoder is strict: a known field with the wrong wire type,
//     a singular field or the extensions field repeated, groups, overlong
//     varints, more than 100 muxers (or certhashes), a muxer name that is
//     empty, longer than 1024 bytes or not UTF-8, are all
//     security.ErrProtocol. Unknown fields are skipped, as protobuf
//     requires.
//   - Concord never sends webtransport_certhashes and ignores received
//     ones (after checking their bounds).
//
// # Defaults and performance
//
// A Transport reuses one static Noise key and the identity signature over
// it for Config.StaticKeyLifetime (default one hour; negative means a new
// key per handshake), as the spec allows ("a single static keypair may be
// generated when noise-libp2p is initialized and used for all sessions").
// The key is never written to disk. Diffie-Hellman runs on crypto/ecdh with
// the handshake's keys kept parsed: flynn/noise's default DH25519 parses
// (and so re-derives the public key of) the private key on every call,
// doubling the scalar multiplications. BenchmarkHandshake compares both.
//
// Each Transport keeps four ephemeral X25519 key pairs generated in
// advance by a background goroutine (one at a time, started when a key is
// taken and ending when the pool is full), so that key generation leaves
// the handshake's critical path when the CPU has idle time; each key is
// used by exactly one handshake. When the handshake ends its DH function
// forgets its keys and zeroes its copy of the ephemeral private key (the
// connection's cipher states would otherwise keep it reachable).
//
// A Transport also remembers up to Config.VerifiedCacheSize (default 1024)
// successful checks of a peer's identity, keyed by a SHA-256 of the
// identity key, the signature and the static key it signs: a peer that
// reconnects with the same static key (another Concord node within its
// static key lifetime) costs no key parsing and no signature verification
// (BenchmarkHandshake compares both; figures in BENCHMARKS.md). The check is a pure function of those inputs, and
// the handshake still proves that the peer holds the static private key, so
// the cache changes no outcome. It gains nothing on a first contact, or
// against go-libp2p, which makes a new static key for every handshake.
//
// # Connections
//
// The returned *Conn encrypts writes in messages of at most 65519 plaintext
// bytes (65535 with the tag), splitting larger writes. Reads are serialized, writes likewise, and one reader and one writer run
// in parallel. A timeout (deadline) leaves the stream intact; a message that
// fails authentication is ErrDecrypt and closes the connection. Close is
// idempotent.
//
// # Memory
//
// An idle Conn holds no frame buffer beyond a 256-byte inline one: the
// reader waits for the next frame in it, small frames are decrypted there,
// and a larger frame is read into a buffer from one of two process-wide
// sync.Pools (4 KiB and 64 KiB plus 256 bytes) that goes back when the
// reader has consumed everything read. The exception is a 4 KiB buffer after
// a medium frame (257 bytes to 4 KiB), kept so that a stream of medium
// frames costs one read each; the next small or large frame releases it.
// Writes take a pooled buffer for their duration (and keep it only while
// the rest of a frame waits after a write timeout). A pooled read buffer
// held plaintext (frames are decrypted in place), so it is cleared before
// it goes back: no connection is handed another's plaintext. Write buffers
// only ever hold ciphertext and are not cleared. The cost: a frame larger
// than 256 bytes that reaches an idle connection takes two reads instead
// of one, and a pooled buffer is taken, cleared and returned per burst.
// Per connection end this saves about 8 KiB against buffers held for the
// connection's life (BENCHMARKS.md).
//
// # Cancellation
//
// Cancelling the Handshake context, or its deadline, sets a past deadline
// on the raw connection, which unblocks the handshake; the raw connection is
// then closed. After Handshake returns the context no longer matters.
//
// # Limits
//
// The spec's 2^64-1 message limit is enforced by flynn/noise (writes fail
// with its ErrMaxNonce); no rekeying is done, as the spec defines none.
package noise
