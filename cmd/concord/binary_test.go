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
// exit 0 and print its summary, `concord listen` must print its address
// and exit 0 on SIGTERM, and a second `concord listen` on its port must fail.
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
		cmd, stderr, line := startBinaryListen(t, ctx, bin, "/ip4/127.0.0.1/tcp/0")
		if _, err := peer.AddrInfoFromString(line); err != nil {
			t.Errorf("listen printed %q: %v", line, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("listen after SIGTERM: %v (stderr %q), want exit 0", err, stderr.String())
		}
	})

	t.Run("listen-port-owned", func(t *testing.T) { testListenPortOwned(t, bin) })

	t.Run("usage-error", func(t *testing.T) {
		err := exec.CommandContext(t.Context(), bin, "demo", "-rounds=zero").Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
			t.Errorf("concord demo -rounds=zero: %v, want exit status %d", err, exitUsage)
		}
	})
}

// startBinaryListen starts `concord listen -listen addr` and returns the
// process and the first address it printed.
func startBinaryListen(t *testing.T, ctx context.Context, bin, addr string) (*exec.Cmd, *strings.Builder, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "listen", "-listen", addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(strings.Builder)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("reading listen's address: %v; stderr %q", err, stderr.String())
	}
	return cmd, stderr, strings.TrimSpace(line)
}

// testListenPortOwned: two processes, one port (issue 14). While one
// `concord listen` serves a port, and after a ping put a connection on it,
// a second one on that port exits 1 naming the address in use; once the
// first has exited, a third listens on the port at once although the first
// one's connection may still be in TIME-WAIT.
func testListenPortOwned(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	first, firstErr, addr := startBinaryListen(t, ctx, bin, "/ip4/127.0.0.1/tcp/0")
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil || len(ai.Addrs) != 1 {
		t.Fatalf("listen printed %q: %v", addr, err)
	}
	listenAddr := ai.Addrs[0].String()
	if out, err := exec.CommandContext(ctx, bin, "ping", "-count", "1", addr).CombinedOutput(); err != nil {
		t.Fatalf("ping %s: %v\n%s", addr, err, out)
	}

	second := exec.CommandContext(ctx, bin, "listen", "-listen", listenAddr)
	var stderr strings.Builder
	second.Stderr = &stderr
	err = second.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitFailure {
		t.Errorf("second listen on %s: %v (stderr %q), want exit status %d", listenAddr, err, stderr.String(), exitFailure)
	}
	if msg := stderr.String(); !strings.Contains(msg, "listening on "+listenAddr) || !strings.Contains(msg, "address already in use") {
		t.Errorf("second listen's stderr = %q, want the address and \"address already in use\"", msg)
	}

	if err := first.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.Wait(); err != nil {
		t.Errorf("first listen after SIGTERM: %v (stderr %q), want exit 0", err, firstErr.String())
	}
	third, thirdErr, addr3 := startBinaryListen(t, ctx, bin, listenAddr)
	if !strings.HasPrefix(addr3, listenAddr+"/p2p/") {
		t.Errorf("third listen printed %q, want %s/p2p/ID", addr3, listenAddr)
	}
	if err := third.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := third.Wait(); err != nil {
		t.Errorf("third listen after SIGTERM: %v (stderr %q), want exit 0", err, thirdErr.String())
	}
}
