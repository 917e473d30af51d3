// Package interop holds Concord's tests against reference peers
// (go-libp2p, go-multistream's simopen code, js-libp2p) and the side-by-side
// benchmarks. It is a separate module so that those peers never enter the
// library's go.mod.
package interop
