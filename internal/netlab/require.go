package netlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// probe caches the result of checking whether this process can build network
// namespaces: the check runs `ip netns add`, which is not free, and its answer
// does not change during a test binary's life.
var probe = sync.OnceValue(checkCapable)

// Require stops the calling test unless it can use network namespaces: the
// platform is Linux, the process runs as root, `ip` and `iptables` are on PATH,
// and `ip netns add` succeeds (a probe namespace is created and deleted).
//
// When the test cannot run, Require calls t.Fatalf with the reason if the
// environment variable CI is "true" (in CI the namespace tests are mandatory),
// and t.Skipf with the reason otherwise.
func Require(t testing.TB) {
	t.Helper()
	if err := probe(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("netlab: namespace test cannot run under CI=true: %v", err)
		}
		t.Skipf("netlab: skipping namespace test: %v", err)
	}
}

// ErrUnavailable is wrapped by the reason Require reports.
var ErrUnavailable = errors.New("network namespaces unavailable")

func checkCapable() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: needs Linux, running on %s", ErrUnavailable, runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root (euid is %d); run the tests as root", ErrUnavailable, os.Geteuid())
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %q not on PATH (install iproute2 and iptables): %v", ErrUnavailable, tool, err)
		}
	}
	name := "nlprobe" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns add %s: %v: %s", ErrUnavailable, name, err, out)
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: ip netns del %s: %v: %s", ErrUnavailable, name, err, out)
	}
	return nil
}
