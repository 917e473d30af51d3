package conformance_test

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/conformance"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

var updateResults = flag.Bool("update-results", false, "rewrite spec/results/concord.md from this run")

const concordResults = "../spec/results/concord.md"

// concordConfig is the target's configuration: the defaults, with a short
// handshake timeout so that the stage-deadline cases finish quickly, and no
// redials (a redial after a failed listen case would reach the next case).
func concordConfig(k peer.PrivKey, listen bool) host.Config {
	cfg := host.Config{Identity: k, TieRetries: -1,
		Upgrader: upgrader.Config{HandshakeTimeout: time.Second, FirstByteTimeout: time.Second}}
	if listen {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
	}
	return cfg
}

// TestConcordConforms runs every case against a Concord host: the dial
// cases against its listener, the listen cases against fresh hosts with the
// same identity that dial the runner.
func TestConcordConforms(t *testing.T) {
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(concordConfig(k, true))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target := h.Addrs()[0].Encapsulate(ma.StringCast("/p2p/" + h.ID().String()))
	r := conformance.Runner{
		Target:        target,
		Listener:      ln,
		AnswerTimeout: 2 * time.Second,
		StageTimeout:  3 * time.Second,
		Trigger: func(ctx context.Context, addr ma.Multiaddr) error {
			d, err := host.New(concordConfig(k, false))
			if err != nil {
				return err
			}
			defer d.Close()
			ai, err := peer.AddrInfoFromP2pAddr(addr)
			if err != nil {
				return err
			}
			_, _ = d.Connect(ctx, *ai)
			<-ctx.Done()
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	results, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	_ = conformance.WriteTable(&table, results)
	t.Logf("\n%s", table.String())
	cases, _ := conformance.Builtin()
	if len(results) != len(cases) {
		t.Errorf("%d results, want %d", len(results), len(cases))
	}
	var page bytes.Buffer
	if err := conformance.WriteMarkdown(&page, "Conformance of Concord", concordIntro, results); err != nil {
		t.Fatal(err)
	}
	if *updateResults {
		if err := os.WriteFile(concordResults, page.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if b, err := os.ReadFile(concordResults); err != nil {
		t.Errorf("%v (run with -update-results)", err)
	} else if want, err := conformance.ReadOutcomes(b); err != nil {
		t.Error(err)
	} else {
		for _, d := range conformance.CompareOutcomes(want, results) {
			t.Errorf("%s (fix it, or run with -update-results and explain)", d)
		}
	}
	for _, res := range results {
		switch res.Outcome {
		case conformance.Fail:
			t.Errorf("%s (%s): got %q, want %q", res.ID, res.Rule, res.Observed, res.Expected)
		case conformance.NotApplicable:
			if res.Observed == "" {
				t.Errorf("%s: not applicable without a reason", res.ID)
			}
		}
	}
}

const concordIntro = `
The conformance suite (package conformance, ` + "`concord conformance`" + `) against a Concord host
with its defaults, except a 1 s handshake timeout (so that the stage-deadline cases are quick) and
no redials after a failed dial. Dial cases run against its listener; listen cases against fresh
hosts with the same identity dialing the runner. Written by
` + "`go test ./conformance -run TestConcordConforms -update-results`" + `; the test fails when
an outcome changes. Durations and addresses in the observed column are replaced by D and ADDR.`
