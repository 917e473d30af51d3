// Package peer holds Concord's peer identities: the key types a peer can
// have, their libp2p protobuf encoding, the peer IDs derived from them, the
// text forms of those IDs, peer addresses (AddrInfo) and key files.
//
// It is the lowest layer of Concord: the security transports (Noise, TLS)
// use it to sign and verify handshake payloads and to check that the remote
// key matches the expected peer ID; the host, the command-line tool and the
// tests use it to name peers. It imports nothing from the rest of Concord.
//
// It implements the libp2p "Peer Ids and Keys" spec (libp2p/specs
// peer-ids/peer-ids.md, revision r2 of 2021-04-30, including its later test
// vectors section), with the encodings go-libp2p, rust-libp2p and js-libp2p
// use; the spec's test vectors are checked in the tests.
//
// # Keys
//
// Ed25519 is the default and the recommended type (GenerateKey(Ed25519,
// nil)). Also supported: secp256k1, ECDSA on P-256 (default), P-384 and
// P-521, and RSA of MinRSABits to MaxRSABits bits (2048 to 8192; 2048 by
// default). The per-type Data formats and signature schemes are the spec's:
//
//	type       public Data          private Data          signature
//	Ed25519    32 bytes             seed||pub, 64 bytes   RFC 8032
//	Secp256k1  33-byte compressed   32-byte scalar        ECDSA(SHA-256), DER
//	ECDSA      PKIX DER             SEC 1 DER             ECDSA(SHA-256), DER
//	RSA        PKIX DER             PKCS #1 DER           PKCS #1 v1.5 (SHA-256)
//
// MarshalPublicKey and MarshalPrivateKey produce the PublicKey/PrivateKey
// protobuf messages deterministically. UnmarshalPublicKey and
// UnmarshalPrivateKey accept only that canonical encoding (fields in order,
// both present, minimal varints, no other fields, no trailing bytes, Data in
// canonical DER), so that a key has exactly one encoding and one peer ID;
// the one exception is the legacy 96-byte Ed25519 private key form, which
// the spec asks readers to accept. RSA keys outside 2048–8192 bits are
// refused with *RSAKeySizeError before any expensive work (CVE-2023-39533
// was CPU exhaustion through huge RSA keys).
//
// # Peer IDs
//
// An ID is the binary multihash of the encoded public key: the identity
// multihash when the PublicKey message is at most 42 bytes (Ed25519,
// secp256k1: the key can be extracted with ExtractPublicKey), SHA2-256
// otherwise (ECDSA, RSA: ExtractPublicKey fails with ErrNoPublicKey).
// String gives the canonical base58btc form ("12D3KooW…", "Qm…"); CID gives
// the CIDv1 form (libp2p-key codec 0x72) in base32 ("bafz…"); Decode accepts
// both, the CID form in any multibase. IDs are strings holding the multihash
// bytes: == compares them, and < orders them bytewise, the order Concord's
// tie-breaks (simultaneous-open election, duplicate connections) rely on.
//
// # Key files
//
// WriteKeyFile stores a PrivateKey message with mode 0600, atomically, and
// never replaces an existing file. ReadKeyFile refuses a file that group or
// others can access, saying how to fix it.
//
// # Errors
//
// Conditions are reported with sentinels (ErrUnknownKeyType,
// ErrMalformedKey, ErrRSAKeySize, ErrInvalidID, ErrNoPublicKey,
// ErrInsecureKeyFile) and the typed *RSAKeySizeError and
// *InsecureKeyFileError; test them with errors.Is and errors.As.
//
// Nothing in this package blocks on I/O except the key file functions, and
// nothing keeps state: all functions are safe for concurrent use, and keys
// are immutable once created.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package peer
