// Package pingexit measures how soon `concord ping` exits after its last
// reply, for the interop tests against each kind of listener (Concord,
// go-libp2p, js-libp2p). Issue 13 asks for an exit within Bound; the
// measurement is from the moment the last "ping N: rtt" line is read from
// the process's stdout to the moment the process has exited.
//
// CONCORD_PING_BIN, if set, names a concord binary to measure instead of
// building cmd/concord from this tree: a way to measure an older build with
// the same code (the tests then report what that build does).
package pingexit

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Bound is how soon after its last reply `concord ping` must exit: the
// median of a check's runs must be within it.
const Bound = 100 * time.Millisecond

// Ceiling bounds every run. The regression these checks exist for is a
// wait for the peer's close, up to yamux's 2 s linger; a single run of a
// loaded machine (load average 28 in one CI run beside a 32-process
// cluster test) once took 190 ms, scheduling and not the protocol, so a
// single run is held to less than half the linger, the median to Bound.
const Ceiling = time.Second

// Build builds cmd/concord for the test (or returns $CONCORD_PING_BIN).
func Build(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("CONCORD_PING_BIN"); bin != "" {
		t.Logf("measuring CONCORD_PING_BIN=%s", bin)
		return bin
	}
	bin := filepath.Join(t.TempDir(), "concord")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/concordp2p/concord/cmd/concord").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Measure runs `bin ping args` and returns how long after its last
// "ping N: rtt" line it exited.
func Measure(t testing.TB, bin string, args ...string) time.Duration {
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

// Check pings addr runs times with `-security security -count 2 -interval
// 100ms`, fails the test when the median exit after the last reply is
// later than Bound or any run's is later than Ceiling, and logs the
// figures (every run, sorted, and the slowest).
func Check(t testing.TB, bin, name, addr, security string, runs int) {
	t.Helper()
	var ds []time.Duration
	for i := range runs {
		d := Measure(t, bin, "-security", security, "-count", "2", "-interval", "100ms", addr)
		ds = append(ds, d)
		if d > Ceiling {
			t.Errorf("%s run %d: concord ping exited %v after its last reply, want ≤ %v in every run", name, i, d, Ceiling)
		}
	}
	slices.Sort(ds)
	if m := ds[len(ds)/2]; m > Bound {
		t.Errorf("%s: concord ping exited a median %v after its last reply, want ≤ %v", name, m, Bound)
	}
	var s []string
	for _, d := range ds {
		s = append(s, d.Round(10*time.Microsecond).String())
	}
	t.Logf("%s: exit after the last reply in %d runs: %s; slowest %v", name, runs, strings.Join(s, " "), ds[len(ds)-1].Round(10*time.Microsecond))
}
