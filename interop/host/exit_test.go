package host

import (
	"bufio"
	"context"
	"fmt"
	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	chost "github.com/concordp2p/concord/host"
)

// exitBound is how soon after its last reply `concord ping` must exit.
const exitBound = 100 * time.Millisecond

// buildConcord builds cmd/concord once for the test.
func buildConcord(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "concord")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/concordp2p/concord/cmd/concord").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPingExitsPromptlyAgainstGoLibp2p: `concord ping` against a stock
// go-libp2p listener exits within 100 ms of printing its last reply.
// Issue 13 reports 2 s (yamux's linger waiting for the peer's close); here
// go-libp2p v0.51 closes on the go-away and the binary built from the
// commit before identify (e0e231a) exited at most 7.0 ms after its last
// reply in 30 runs of this measurement, so the 2 s did not reproduce with
// go-libp2p on loopback. The linger against a
// peer that does not close (js-libp2p, a frozen process) is tested in
// host.TestCloseDoesNotWaitForLinger. Five runs against each of three
// listeners (TCP with Noise, with TLS, and go-libp2p's default stack);
// each is measured from the moment the last reply line is read to the
// process's exit.
func TestPingExitsPromptlyAgainstGoLibp2p(t *testing.T) {
	bin := buildConcord(t)
	defaults, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0")) // go-libp2p's whole default stack
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = defaults.Close() })
	for _, tc := range []struct {
		name string
		lh   lphost.Host
		sec  string
	}{
		{"tcp-noise", newLibp2pIdentify(t, chost.SecurityNoise), "noise"},
		{"tcp-tls", newLibp2pIdentify(t, chost.SecurityTLS), "tls"},
		{"defaults", defaults, "noise,tls"},
	} {
		addr := fmt.Sprintf("%s/p2p/%s", tc.lh.Addrs()[0], tc.lh.ID())
		var worst time.Duration
		for i := range 5 {
			d := pingExit(t, bin, "-security", tc.sec, "-count", "2", "-interval", "100ms", addr)
			worst = max(worst, d)
			if d > exitBound {
				t.Errorf("%s run %d: concord ping exited %v after its last reply, want ≤ %v", tc.name, i, d, exitBound)
			}
		}
		t.Logf("%s: slowest exit after the last reply in 5 runs: %v", tc.name, worst)
	}
}

// pingExit runs `concord ping args` and returns how long after its last
// "ping N: rtt" line it exited.
func pingExit(t *testing.T, bin string, args ...string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"ping"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var last time.Time
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.HasPrefix(line, "ping ") && strings.Contains(line, ": rtt ") {
			last = time.Now()
		}
	}
	err = cmd.Wait()
	exited := time.Now()
	if err != nil || last.IsZero() {
		t.Fatalf("concord ping %s: %v, no reply %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, last.IsZero(), out.String(), stderr.String())
	}
	return exited.Sub(last)
}
