// Package simopen tests Concord's simopen stage against go-multistream:
// the reference simopen code of v0.2.2 and v0.4.1
// (SelectWithSimopenOrFail) in both roles of an election and as single
// dialer, those versions' listeners, and v0.6 (what go-libp2p v0.52 uses)
// as a plain multistream-select peer.
//
// Three versions of one module cannot share a build under their real
// path, so the interop go.mod requires v0.2.2 and v0.4.1 under alias
// module paths (ref.concord.invalid/go-multistream-0.2.2 and -0.4.1)
// replaced by the real modules at those versions; go.sum pins them under
// their real path, so the code is exactly what the proxy serves.
package simopen
