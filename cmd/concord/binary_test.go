package main

import (
	"bufio"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
)

// buildBinary builds the real concord command once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "concord")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestBinary runs the built command as a user would: `concord demo` must
// exit 0 and print its summary, and `concord listen` must print its address
// and exit 0 on SIGTERM.
func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("demo", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "demo", "-rounds", "3")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("concord demo -rounds 3: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
		}
		if !strings.Contains(string(out), "summary   3 rounds: 3 ok, 0 failed") {
			t.Errorf("concord demo output lacks the summary:\n%s", out)
		}
		t.Logf("concord demo -rounds 3:\n%s", out)
	})

	t.Run("listen-sigterm", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "listen", "-listen", "/ip4/127.0.0.1/tcp/0")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("reading listen's address: %v; stderr %q", err, stderr.String())
		}
		if _, err := peer.AddrInfoFromString(strings.TrimSpace(line)); err != nil {
			t.Errorf("listen printed %q: %v", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("listen after SIGTERM: %v (stderr %q), want exit 0", err, stderr.String())
		}
	})

	t.Run("usage-error", func(t *testing.T) {
		err := exec.CommandContext(t.Context(), bin, "demo", "-rounds=zero").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
			t.Errorf("concord demo -rounds=zero: %v, want exit status %d", err, exitUsage)
		}
	})
}
