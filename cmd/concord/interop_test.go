package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/cmd/concord/internal/resp"
	"github.com/concordp2p/concord/peer"
)

func TestInteropUnsupported(t *testing.T) {
	base := map[string]string{"transport": "tcp", "muxer": "yamux", "security": "noise", "is_dialer": "true"}
	for _, change := range []map[string]string{
		{"transport": "quic-v1"}, {"transport": "ws"}, {"transport": ""},
		{"muxer": "mplex"}, {"security": "plaintext"}, {"security": ""},
	} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range change {
			vars[k] = v
		}
		r := runIn(t.Context(), vars, "interop")
		if r.code != exitUnsupported {
			t.Errorf("interop with %v: exit %d, want %d", change, r.code, exitUnsupported)
		}
		oneErrorLine(t, r, "unsupported")
	}
	for _, change := range []map[string]string{{"is_dialer": "yes"}, {"ip": "nowhere"}, {"test_timeout_seconds": "-3"}} {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range change {
			vars[k] = v
		}
		if r := runIn(t.Context(), vars, "interop"); r.code != exitFailure {
			t.Errorf("interop with %v: exit %d, want %d; stderr %q", change, r.code, exitFailure, r.stderr)
		}
	}
}

// startRedis runs a real redis-server on a random loopback port for the
// test and returns its address. When redis-server is missing and the test
// runs as root it installs it with apt-get; when it still cannot run one, it
// fails under CI=true and skips otherwise.
func startRedis(t *testing.T) string {
	t.Helper()
	unavailable := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server needed under CI=true: "+format, a...)
		}
		t.Skipf("redis-server unavailable: "+format, a...)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Geteuid() != 0 {
			unavailable("not installed and not root, so not installing it")
		}
		if out, err := exec.Command("apt-get", "install", "-y", "-qq", "redis-server").CombinedOutput(); err != nil {
			// The package lists may be missing on a fresh machine.
			if out2, err2 := exec.Command("apt-get", "update", "-qq").CombinedOutput(); err2 != nil {
				unavailable("apt-get install: %v: %s; apt-get update: %v: %s", err, out, err2, out2)
			}
			if out, err := exec.Command("apt-get", "install", "-y", "-qq", "redis-server").CombinedOutput(); err != nil {
				unavailable("apt-get install: %v: %s", err, out)
			}
		}
		if bin, err = exec.LookPath("redis-server"); err != nil {
			unavailable("installed but not on PATH: %v", err)
		}
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			unavailable("finding a free port: %v", err)
		}
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			unavailable("starting: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitRedis(t.Context(), addr); lastErr == nil {
			return addr
		}
		_ = cmd.Process.Kill()
	}
	unavailable("not answering PING: %v", lastErr)
	return ""
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitRedis polls addr for up to 5 s until the server answers PING.
func waitRedis(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		c, err := resp.Dial(ctx, addr)
		if err == nil {
			v, perr := c.Do(ctx, 0, "PING")
			_ = c.Close()
			if perr == nil && v.Str == "PONG" {
				return nil
			}
			err = errors.Join(perr, errors.New("no PONG"))
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestInteropWithRedis(t *testing.T) {
	redis := startRedis(t)
	vars := func(dialer string, timeout string) map[string]string {
		return map[string]string{"transport": "tcp", "muxer": "yamux", "security": "noise", "is_dialer": dialer,
			"ip": "127.0.0.1", "redis_addr": redis, "test_timeout_seconds": timeout}
	}

	lctx, stopListener := context.WithCancel(t.Context())
	listenerDone := make(chan result, 1)
	go func() { listenerDone <- runIn(lctx, vars("false", "30"), "interop") }()

	dialer := runIn(t.Context(), vars("true", "30"), "interop")
	stopListener()
	listener := <-listenerDone

	if dialer.code != exitOK {
		t.Fatalf("dialer exited %d, want 0; stderr %q", dialer.code, dialer.stderr)
	}
	if listener.code != exitOK {
		t.Errorf("listener exited %d after being stopped, want 0; stderr %q", listener.code, listener.stderr)
	}
	if strings.Count(dialer.stdout, "\n") != 1 {
		t.Fatalf("dialer stdout = %q, want exactly one line", dialer.stdout)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(dialer.stdout), &got); err != nil {
		t.Fatalf("dialer stdout %q: %v", dialer.stdout, err)
	}
	if len(got) != 2 || got["handshakePlusOneRTTMillis"] <= 0 || got["pingRTTMilllis"] <= 0 ||
		got["pingRTTMilllis"] > got["handshakePlusOneRTTMillis"] {
		t.Errorf("dialer printed %v, want positive handshakePlusOneRTTMillis >= pingRTTMilllis and nothing else", got)
	}
	// The listener announced where it listens; the dialer consumed it.
	first, _, _ := strings.Cut(listener.stderr, "\n")
	addr, ok := strings.CutPrefix(first, "listening on ")
	if !ok {
		t.Fatalf("listener stderr %q, want \"listening on ADDR\"", listener.stderr)
	}
	if _, err := peer.AddrInfoFromString(addr); err != nil || !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") {
		t.Errorf("listener published %q (%v), want /ip4/127.0.0.1/tcp/PORT/p2p/ID", addr, err)
	}
	if n := listLen(t, redis); n != 0 {
		t.Errorf("listenerAddr holds %d entries after the test, want 0", n)
	}

	// A listener that nobody stops fails when its timeout passes.
	start := time.Now()
	late := runIn(t.Context(), vars("false", "0.3"), "interop")
	if late.code != exitFailure {
		t.Errorf("listener reaching test_timeout_seconds exited %d, want 1", late.code)
	}
	if !strings.Contains(late.stderr, "concord: interop: listener: test_timeout_seconds passed") {
		t.Errorf("timed-out listener's stderr = %q", late.stderr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("listener with a 0.3 s timeout ran %v", d)
	}

	// A dialer whose listener never publishes gives up at its timeout.
	c, err := resp.Dial(t.Context(), redis)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Do(t.Context(), 0, "DEL", interopListKey)
	_ = c.Close()
	lonely := runIn(t.Context(), vars("true", "1"), "interop")
	if lonely.code != exitFailure {
		t.Errorf("dialer without a listener exited %d, want 1", lonely.code)
	}
	oneErrorLine(t, lonely, "waiting for the listener's address")
}

func listLen(t *testing.T, addr string) int64 {
	t.Helper()
	c, err := resp.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Do(t.Context(), 0, "LLEN", interopListKey)
	if err != nil {
		t.Fatal(err)
	}
	return v.Int
}
