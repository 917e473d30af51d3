// Package identify is the wire format and the checks of libp2p's identify
// protocol (/ipfs/id/1.0.0) and its push variant (/ipfs/id/push/1.0.0),
// with the signed peer record (libp2p RFC 0003) in its signed envelope
// (RFC 0002). The host uses it: it answers identify, asks every new peer,
// pushes when its protocols change, and keeps what each peer said on the
// connection (host.Conn.Identify). Applications use the types (Info,
// PeerRecord); few need the functions.
//
// The messages are encoded and decoded with google.golang.org/protobuf's
// protowire, field by field, as the .proto files of go-libp2p define them
// (the field numbers are beside the constants). No I/O deadline is set
// here: Read and Write take an io.Reader or io.Writer that the caller has
// bound to a context (internal/ctxconn).
//
// # Bounds
//
// One response or push is at most MaxMessages length-prefixed messages of
// at most MaxMessageSize bytes each (go-libp2p's limits: 10 and 8 KiB),
// merged as protobuf merges them; at most MaxProtocols protocols and
// MaxAddrs listen addresses are accepted, more is ErrMalformed.
//
// # Checks
//
// Check refuses a message whose public key is not the authenticated peer's
// (ErrKeyMismatch) or whose signed peer record does not verify, is signed
// by another key, or names another peer (ErrBadRecord). A message with
// neither passes: the secure channel has already authenticated the peer,
// and the unsigned listen addresses are then only the peer's say-so.
//
// # Limits
//
// A push can replace a field but not empty a repeated one (a missing field
// means "unchanged"), which is the spec's rule; go-libp2p always pushes
// every field.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package identify
