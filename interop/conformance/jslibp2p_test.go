package conformance

import (
	"context"
	"net"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/conformance"
	"github.com/concordp2p/concord/interop/jspeer"
)

const jsResults = "../../spec/results/js-libp2p.md"

// TestJSLibp2pConformance runs every case against js-libp2p 3.3 (the
// interop module's peer.mjs, Node from interop/js's lock file): the dial
// cases against a listener offering Noise and TLS, the listen cases
// against `peer.mjs dial` processes. Those dial with an identity of their
// own, not the listener's, so the listen cases run without a target peer
// ID (the cases that check it are not applicable there). Outcomes must
// match the committed table; -update rewrites it.
func TestJSLibp2pConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute or more: stalled-handshake cases wait out js-libp2p's own timeouts")
	}
	jspeer.Node(t) // installs Node and the js peer (npm ci), or skips (fails under CI=true)
	// js-libp2p accepts 5 inbound connections per second from one address
	// by default and resets the rest; the suite opens dozens from
	// 127.0.0.1, so the limit is raised (jsIntro says so).
	l := jspeer.Listen(t, "noise,tls", "--inbound-threshold", "1000")
	target, err := ma.NewMultiaddr(l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	dialer := conformance.Runner{Target: target, AnswerTimeout: 3 * time.Second, StageTimeout: 20 * time.Second}
	dialRes, err := dialer.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listener := conformance.Runner{
		Listener:      ln,
		AnswerTimeout: 3 * time.Second,
		StageTimeout:  20 * time.Second,
		Trigger: func(ctx context.Context, addr ma.Multiaddr) error {
			cmd := jspeer.Command(ctx, t, "dial", "--security", "noise,tls", "--pings", "1", "--perf", "0", addr.String())
			_ = cmd.Run() // it fails whenever the case refuses it; ctx ends it
			return nil
		},
	}
	listenRes, err := listener.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dialRes) != len(listenRes) {
		t.Fatalf("the two runs returned %d and %d results", len(dialRes), len(listenRes))
	}
	res := make([]conformance.Result, len(dialRes))
	for i := range dialRes {
		res[i] = dialRes[i]
		if listenRes[i].Mode == "listen" {
			res[i] = listenRes[i]
		}
	}
	checkResults(t, jsResults, "Conformance of js-libp2p 3.3.11", jsIntro, res)
}

const jsIntro = `
The conformance suite (package conformance, ` + "`concord conformance`" + `) against js-libp2p
3.3.11 (interop/js/peer.mjs, Node 22 from interop/js's lock file) with Noise and TLS, yamux and
TCP, on 127.0.0.1, its limit of 5 inbound connections per second from one address raised to 1000
(with the default, the cases after the fifth in a second see their connections reset, and a case
passes or fails by its place in the run). Dial cases run against its listener; listen cases against ` + "`peer.mjs dial`" + `
processes, which dial with an identity of their own, so the listen cases run without the target's
peer ID. Written by ` + "`go test ./conformance -run TestJSLibp2pConformance -update`" + ` in interop/;
the test fails when an outcome changes. Durations and addresses in the observed column are
replaced by D and ADDR. Failed cases are deviations observed from the rule cited.`
