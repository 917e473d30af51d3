// Package security tests Concord's security transports (security/noise and
// security/tls) against go-libp2p's own Noise and TLS transports in both
// roles: handshakes with identity keys of all four types, checking the peer
// IDs each side sees and the muxer each side reports as agreed inside the
// handshake.
//
// go-libp2p falls back to multistream-select when the muxer lists are
// disjoint; Concord's Noise follows the inlined-muxer spec's MUST and fails
// the handshake. TestNoiseDisjointMuxers pins that difference.
package security
