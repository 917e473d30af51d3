package conformance

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/conformance"
)

var update = flag.Bool("update", false, "rewrite spec/results/go-libp2p.md from this run")

const results = "../../spec/results/go-libp2p.md"

// newGoHost is a go-libp2p v0.52 host with its default security (TLS, then
// Noise), muxer (yamux) and TCP, on 127.0.0.1 (or not listening), with ping
// on and relay, NAT and metrics off.
func newGoHost(k lpcrypto.PrivKey, listen bool) (lphost.Host, error) {
	addrs := libp2p.NoListenAddrs
	if listen {
		addrs = libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")
	}
	return libp2p.New(libp2p.Identity(k), addrs, libp2p.DisableRelay(), libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(), libp2p.Ping(true))
}

// TestGoLibp2pConformance runs every case against go-libp2p: the dial cases
// against a listening host, the listen cases against fresh hosts with the
// same identity that dial the runner. Outcomes must match the committed
// table; -update rewrites it.
func TestGoLibp2pConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("about a minute: go-libp2p drops a stalled handshake after its 15 s accept timeout")
	}
	k, _, err := lpcrypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newGoHost(k, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	target, err := ma.NewMultiaddr(h.Addrs()[0].String() + "/p2p/" + h.ID().String())
	if err != nil {
		t.Fatal(err)
	}
	r := conformance.Runner{
		Target:        target,
		Listener:      ln,
		AnswerTimeout: 3 * time.Second,
		StageTimeout:  20 * time.Second,
		Trigger: func(ctx context.Context, addr ma.Multiaddr) error {
			d, err := newGoHost(k, false)
			if err != nil {
				return err
			}
			defer d.Close()
			ai, err := lppeer.AddrInfoFromP2pAddr(addr)
			if err != nil {
				return err
			}
			_ = d.Connect(ctx, *ai)
			<-ctx.Done()
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := r.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkResults(t, results, "Conformance of go-libp2p v0.52.0", intro, res)
}

// checkResults logs the table of res and compares its outcomes with the
// committed page at path, or, with -update, rewrites the page.
func checkResults(t *testing.T, path, title, intro string, res []conformance.Result) {
	t.Helper()
	var table strings.Builder
	_ = conformance.WriteTable(&table, res)
	t.Logf("\n%s", table.String())

	var page bytes.Buffer
	if err := conformance.WriteMarkdown(&page, title, intro, res); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, page.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	want, err := conformance.ReadOutcomes(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range conformance.CompareOutcomes(want, res) {
		t.Errorf("%s (run with -update and explain the change in the page)", d)
	}
}

const intro = `
The conformance suite (package conformance, ` + "`concord conformance`" + `) against a go-libp2p
v0.52.0 host with its default security (TLS, then Noise), yamux and TCP, on 127.0.0.1; ping on,
relay, NAT and metrics off. Dial cases run against its listener; listen cases against fresh hosts
with the same identity dialing the runner. Written by
` + "`go test ./conformance -run TestGoLibp2pConformance -update`" + ` in interop/; the test fails
when an outcome changes. Durations and addresses in the observed column are replaced by D and ADDR.
Failed cases are deviations observed from the rule cited; each is discussed in the spec document
of its rule.`
