// Package contract runs `concord interop` against go-libp2p and js-libp2p
// reference peers in both contracts of the libp2p interop runners, through
// a real redis-server on loopback: every ordered pairing of the three
// (Concord, go-libp2p, js-libp2p as dialer and as listener), Noise and TLS.
package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/interop/jspeer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// impl is one implementation's interop program.
type impl struct {
	name string
	cmd  func(ctx context.Context, t *testing.T) *exec.Cmd
}

// contract is one runner contract: the variables of a side and a parser
// of the dialer's stdout.
type contract struct {
	name   string
	vars   func(redis, security string, dialer bool, testKey string) []string
	result func(stdout string) (handshake, rtt float64, err error)
}

var contracts = []contract{
	{
		name: "transport-interop",
		vars: func(redis, security string, dialer bool, _ string) []string {
			return []string{"transport=tcp", "muxer=yamux", "security=" + security, "is_dialer=" + strconv.FormatBool(dialer),
				"ip=127.0.0.1", "redis_addr=" + redis, "test_timeout_seconds=60"}
		},
		result: func(stdout string) (float64, float64, error) {
			var r map[string]float64
			if strings.Count(stdout, "\n") != 1 {
				return 0, 0, fmt.Errorf("want one JSON line, got %q", stdout)
			}
			if err := json.Unmarshal([]byte(stdout), &r); err != nil {
				return 0, 0, err
			}
			h, ok1 := r["handshakePlusOneRTTMillis"]
			p, ok2 := r["pingRTTMilllis"]
			if !ok1 || !ok2 {
				return 0, 0, fmt.Errorf("want handshakePlusOneRTTMillis and pingRTTMilllis, got %v", r)
			}
			return h, p, nil
		},
	},
	{
		name: "unified",
		vars: func(redis, security string, dialer bool, testKey string) []string {
			return []string{"TRANSPORT=tcp", "MUXER=yamux", "SECURE_CHANNEL=" + security, "IS_DIALER=" + strconv.FormatBool(dialer),
				"LISTENER_IP=127.0.0.1", "REDIS_ADDR=" + redis, "TEST_KEY=" + testKey, "DEBUG=false"}
		},
		result: parseYAML,
	},
}

// parseYAML reads the unified contract's result: a "latency" mapping with
// handshake_plus_one_rtt, ping_rtt and unit ms, comments allowed. It is
// this small, so the test reads it line by line.
func parseYAML(stdout string) (handshake, rtt float64, err error) {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 || lines[0] != "latency:" || lines[3] != "  unit: ms" {
		return 0, 0, fmt.Errorf("want latency: handshake_plus_one_rtt, ping_rtt, unit: ms; got %q", stdout)
	}
	num := func(line, key string) float64 {
		v, ok := strings.CutPrefix(line, "  "+key+": ")
		f, perr := strconv.ParseFloat(v, 64)
		if !ok || perr != nil {
			err = fmt.Errorf("line %q, want \"  %s: NUMBER\"", line, key)
		}
		return f
	}
	return num(lines[1], "handshake_plus_one_rtt"), num(lines[2], "ping_rtt"), err
}

func TestContracts(t *testing.T) {
	redis := startRedis(t)
	dir := t.TempDir()
	concordBin := build(t, dir, "concord", "github.com/concordp2p/concord/cmd/concord")
	goBin := build(t, dir, "gopeer", "./gopeer")
	impls := map[string]impl{
		"concord": {"concord", func(ctx context.Context, _ *testing.T) *exec.Cmd {
			return exec.CommandContext(ctx, concordBin, "interop")
		}},
		"go": {"go-libp2p", func(ctx context.Context, _ *testing.T) *exec.Cmd { return exec.CommandContext(ctx, goBin) }},
		"js": {"js-libp2p", func(ctx context.Context, t *testing.T) *exec.Cmd { return jspeer.Command(ctx, t, "contract") }},
	}
	// Every ordered pair: the pairs without Concord check that the
	// reference programs keep the contracts themselves.
	names := []string{"concord", "go", "js"}
	n := 0
	for _, c := range contracts {
		for _, security := range []string{"noise", "tls"} {
			for _, d := range names {
				for _, l := range names {
					dialer, listener := impls[d], impls[l]
					n++
					testKey := fmt.Sprintf("%08x", 0xc0c0a000+n)
					name := fmt.Sprintf("%s/%s/%s-dials-%s", c.name, security, dialer.name, listener.name)
					t.Run(name, func(t *testing.T) {
						runPair(t, c, redis, security, testKey, dialer, listener)
					})
				}
			}
		}
	}
}

// runPair runs one test as the runner would: the listener first, then the
// dialer; the dialer's exit status and stdout are the result; the listener
// is stopped with SIGTERM.
func runPair(t *testing.T, c contract, redis, security, testKey string, dialer, listener impl) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	lcmd := listener.cmd(ctx, t)
	lcmd.Env = append(cleanEnv(), c.vars(redis, security, false, testKey)...)
	var lerr bytes.Buffer
	lcmd.Stderr = &lerr
	if err := lcmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = lcmd.Process.Kill()
			_ = lcmd.Wait()
		}
	}()

	dcmd := dialer.cmd(ctx, t)
	dcmd.Env = append(cleanEnv(), c.vars(redis, security, true, testKey)...)
	var dout, derr bytes.Buffer
	dcmd.Stdout, dcmd.Stderr = &dout, &derr
	start := time.Now()
	err := dcmd.Run()
	elapsed := time.Since(start)

	_ = lcmd.Process.Signal(syscall.SIGTERM)
	lwait := lcmd.Wait()
	stopped = true
	if err != nil {
		t.Fatalf("%s dialer: %v\nstdout %q\nstderr %s\nlistener stderr %s", dialer.name, err, dout.String(), derr.String(), lerr.String())
	}
	handshake, rtt, perr := c.result(dout.String())
	if perr != nil {
		t.Fatalf("%s dialer's result: %v", dialer.name, perr)
	}
	if handshake <= 0 || rtt < 0 || rtt > handshake {
		t.Errorf("%s dialer: handshake %v ms, ping %v ms; want a positive handshake at least the ping", dialer.name, handshake, rtt)
	}
	var ee *exec.ExitError
	if lwait != nil && !(errors.As(lwait, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGTERM) {
		t.Errorf("%s listener stopped with SIGTERM: %v; stderr %s", listener.name, lwait, lerr.String())
	}
	t.Logf("handshake+1RTT %.3f ms, ping %.3f ms (dialer process %v)", handshake, rtt, elapsed.Round(time.Millisecond))
}

// cleanEnv is the test's environment without either contract's variables.
func cleanEnv() []string {
	drop := map[string]bool{}
	for _, c := range contracts {
		for _, kv := range c.vars("", "", false, "") {
			k, _, _ := strings.Cut(kv, "=")
			drop[k] = true
		}
	}
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !drop[k] {
			out = append(out, kv)
		}
	}
	return out
}

func build(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// startRedis runs a real redis-server on a loopback port for the test.
// test.sh installs it; without it the test skips, and fails under CI=true.
func startRedis(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server needed under CI=true: %v", err)
		}
		t.Skipf("redis-server unavailable: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// redis-server logs "Ready to accept connections" once it listens.
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				ready <- true
				for sc.Scan() {
				}
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("redis-server exited before it was ready")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server not ready within 10 s")
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
