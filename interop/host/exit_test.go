package host

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"

	chost "github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/interop/internal/pingexit"
)

// TestPingExitsPromptly: `concord ping` exits within 100 ms (median of
// five runs, pingexit.Bound; every run within pingexit.Ceiling, 1 s) of
// printing its last reply against a Concord listener and against
// stock go-libp2p listeners (TCP with Noise, with TLS, and go-libp2p's
// default stack); the js-libp2p listeners are in package jspeer's
// TestPingExitsPromptlyAgainstJS. Five runs each, measured from the
// moment the last reply line is read to the process's exit.
//
// Issue 13 reports 2 s against go-libp2p and js-libp2p listeners (yamux's
// linger waiting for the peer's close). Against go-libp2p on loopback it
// did not reproduce: go-libp2p closes on the go-away, and the binary of
// the commit before the fix (694b149^, through CONCORD_PING_BIN) exited
// 1.5–2.8 ms after its last reply to these listeners, the current one
// 1.7–6.0 ms; the linger against a peer that keeps its end open is what the
// js case and host.TestCloseDoesNotWaitForLinger check.
func TestPingExitsPromptly(t *testing.T) {
	bin := pingexit.Build(t)
	defaults, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")) // go-libp2p's whole default stack
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = defaults.Close() })
	concord, err := chost.New(chost.Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = concord.Close() })
	p2p := func(addrs []ma.Multiaddr, id fmt.Stringer) string { return fmt.Sprintf("%s/p2p/%s", addrs[0], id) }
	noise, tls := newLibp2pIdentify(t, chost.SecurityNoise), newLibp2pIdentify(t, chost.SecurityTLS)
	for _, tc := range []struct {
		name, addr, sec string
	}{
		{"concord", p2p(concord.Addrs(), concord.ID()), "noise,tls"},
		{"go-libp2p-tcp-noise", p2p(noise.Addrs(), noise.ID()), "noise"},
		{"go-libp2p-tcp-tls", p2p(tls.Addrs(), tls.ID()), "tls"},
		{"go-libp2p-defaults", p2p(defaults.Addrs(), defaults.ID()), "noise,tls"},
	} {
		pingexit.Check(t, bin, tc.name, tc.addr, tc.sec, 5)
	}
}
