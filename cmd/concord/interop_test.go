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

// with returns base with change applied.
func with(base, change map[string]string) map[string]string {
	vars := map[string]string{}
	for k, v := range base {
		vars[k] = v
	}
	for k, v := range change {
		vars[k] = v
	}
	return vars
}

var (
	legacyBase  = map[string]string{"transport": "tcp", "muxer": "yamux", "security": "noise", "is_dialer": "true"}
	unifiedBase = map[string]string{"TRANSPORT": "tcp", "MUXER": "yamux", "SECURE_CHANNEL": "noise", "IS_DIALER": "true", "TEST_KEY": "a5b50d5e"}
)

func TestInteropUnsupported(t *testing.T) {
	for _, c := range []struct {
		base   map[string]string
		change map[string]string
	}{
		{legacyBase, map[string]string{"transport": "quic-v1"}},
		{legacyBase, map[string]string{"transport": "ws"}},
		{legacyBase, map[string]string{"muxer": "mplex"}},
		{legacyBase, map[string]string{"security": "plaintext"}},
		{unifiedBase, map[string]string{"TRANSPORT": "quic-v1"}},
		{unifiedBase, map[string]string{"MUXER": "mplex"}},
		{unifiedBase, map[string]string{"SECURE_CHANNEL": "plaintext"}},
	} {
		r := runIn(t.Context(), with(c.base, c.change), "interop")
		if r.code != exitUnsupported {
			t.Errorf("interop with %v: exit %d, want %d", c.change, r.code, exitUnsupported)
		}
		oneErrorLine(t, r, "unsupported")
	}
}

// TestInteropBadSettings: a variable left out or with a value the contract
// does not allow is a usage error naming it.
func TestInteropBadSettings(t *testing.T) {
	for _, c := range []struct {
		base   map[string]string
		change map[string]string
		want   string
	}{
		{legacyBase, map[string]string{"transport": ""}, "transport-interop contract: transport not set"},
		{legacyBase, map[string]string{"security": ""}, "transport-interop contract: security not set"},
		{legacyBase, map[string]string{"is_dialer": "yes"}, "is_dialer=yes, want true or false"},
		{legacyBase, map[string]string{"ip": "nowhere"}, "ip=nowhere is not an IP address"},
		{legacyBase, map[string]string{"test_timeout_seconds": "-3"}, "test_timeout_seconds=-3 is not a positive number"},
		{unifiedBase, map[string]string{"TEST_KEY": ""}, "unified contract: TEST_KEY not set"},
		{unifiedBase, map[string]string{"SECURE_CHANNEL": "", "MUXER": ""}, "unified contract: SECURE_CHANNEL, MUXER not set"},
		{unifiedBase, map[string]string{"IS_DIALER": "1"}, "IS_DIALER=1, want true or false"},
		{unifiedBase, map[string]string{"LISTENER_IP": "nowhere"}, "LISTENER_IP=nowhere is not an IP address"},
		{unifiedBase, map[string]string{"TEST_TIMEOUT_SECS": "soon"}, "TEST_TIMEOUT_SECS=soon is not a positive number"},
	} {
		r := runIn(t.Context(), with(c.base, c.change), "interop")
		if r.code != exitUsage {
			t.Errorf("interop with %v: exit %d, want %d; stderr %q", c.change, r.code, exitUsage, r.stderr)
		}
		oneErrorLine(t, r, c.want)
		oneErrorLine(t, r, "(see 'concord interop -h')")
	}
}

// TestInteropNoConfig: with nothing set, interop names what to set.
func TestInteropNoConfig(t *testing.T) {
	r := runIn(t.Context(), nil, "interop")
	if r.code != exitUsage {
		t.Errorf("interop with no variables: exit %d, want %d", r.code, exitUsage)
	}
	for _, want := range []string{"TRANSPORT, SECURE_CHANNEL, MUXER, IS_DIALER, TEST_KEY", "transport, security, muxer, is_dialer", "(see 'concord interop -h')"} {
		oneErrorLine(t, r, want)
	}
	r = runIn(t.Context(), map[string]string{"TRANSPORT": "tcp", "IS_DIALER": "true"}, "interop")
	if r.code != exitUsage {
		t.Errorf("interop with TRANSPORT and IS_DIALER only: exit %d, want %d", r.code, exitUsage)
	}
	oneErrorLine(t, r, "unified contract: SECURE_CHANNEL, MUXER, TEST_KEY not set")
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

// interopCase is one contract as the tests drive it: its variables for a
// side, its Redis list, and a check of the dialer's stdout.
type interopCase struct {
	name    string
	vars    func(redis string, dialer bool, timeout string) map[string]string
	listKey string
	// result parses the dialer's stdout into handshake-plus-one-RTT and
	// ping RTT, in milliseconds.
	result func(t *testing.T, stdout string) (handshake, rtt float64)
}

var interopCases = []interopCase{
	{
		name: "transport-interop",
		vars: func(redis string, dialer bool, timeout string) map[string]string {
			return map[string]string{"transport": "tcp", "muxer": "yamux", "security": "noise", "is_dialer": strconv.FormatBool(dialer),
				"ip": "127.0.0.1", "redis_addr": redis, "test_timeout_seconds": timeout}
		},
		listKey: interopListKey,
		result: func(t *testing.T, stdout string) (float64, float64) {
			if strings.Count(stdout, "\n") != 1 {
				t.Fatalf("dialer stdout = %q, want exactly one line", stdout)
			}
			var got map[string]float64
			if err := json.Unmarshal([]byte(stdout), &got); err != nil {
				t.Fatalf("dialer stdout %q: %v", stdout, err)
			}
			if len(got) != 2 {
				t.Errorf("dialer printed %v, want handshakePlusOneRTTMillis and pingRTTMilllis only", got)
			}
			return got["handshakePlusOneRTTMillis"], got["pingRTTMilllis"]
		},
	},
	{
		name: "unified",
		vars: func(redis string, dialer bool, timeout string) map[string]string {
			return map[string]string{"TRANSPORT": "tcp", "MUXER": "yamux", "SECURE_CHANNEL": "tls", "IS_DIALER": strconv.FormatBool(dialer),
				"LISTENER_IP": "127.0.0.1", "REDIS_ADDR": redis, "TEST_KEY": "5eed1e55", "TEST_TIMEOUT_SECS": timeout, "DEBUG": "true"}
		},
		listKey: "5eed1e55_listener_multiaddr",
		result:  parseUnifiedYAML,
	},
}

// parseUnifiedYAML reads the unified contract's result, which is exactly
// a latency mapping with handshake_plus_one_rtt, ping_rtt and unit: ms
// (comments aside). The YAML is this small, so the test reads it by line.
func parseUnifiedYAML(t *testing.T, stdout string) (handshake, rtt float64) {
	t.Helper()
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSuffix(stdout, "\n"), "\n") {
		if !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 4 || lines[0] != "latency:" || lines[3] != "  unit: ms" {
		t.Fatalf("dialer stdout = %q, want latency: handshake_plus_one_rtt, ping_rtt, unit: ms", stdout)
	}
	num := func(line, key string) float64 {
		v, ok := strings.CutPrefix(line, "  "+key+": ")
		f, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			t.Fatalf("dialer line %q, want \"  %s: NUMBER\"", line, key)
		}
		return f
	}
	return num(lines[1], "handshake_plus_one_rtt"), num(lines[2], "ping_rtt")
}

func TestInteropWithRedis(t *testing.T) {
	redis := startRedis(t)
	for _, tc := range interopCases {
		t.Run(tc.name, func(t *testing.T) { testInteropWithRedis(t, redis, tc) })
	}
}

func testInteropWithRedis(t *testing.T, redis string, tc interopCase) {
	lctx, stopListener := context.WithCancel(t.Context())
	listenerDone := make(chan result, 1)
	go func() { listenerDone <- runIn(lctx, tc.vars(redis, false, "30"), "interop") }()

	dialer := runIn(t.Context(), tc.vars(redis, true, "30"), "interop")
	stopListener()
	listener := <-listenerDone

	if dialer.code != exitOK {
		t.Fatalf("dialer exited %d, want 0; stderr %q", dialer.code, dialer.stderr)
	}
	if listener.code != exitOK {
		t.Errorf("listener exited %d after being stopped, want 0; stderr %q", listener.code, listener.stderr)
	}
	handshake, rtt := tc.result(t, dialer.stdout)
	if handshake <= 0 || rtt <= 0 || rtt > handshake {
		t.Errorf("dialer printed handshake %v, ping %v; want positive handshake >= ping", handshake, rtt)
	}
	if tc.name == "unified" && !strings.Contains(dialer.stderr, `msg="connection opened"`) {
		t.Errorf("dialer with DEBUG=true logged no connection on stderr: %q", dialer.stderr)
	}
	// The listener announced where it listens; the dialer consumed it.
	var addr string
	ok := false
	for l := range strings.SplitSeq(listener.stderr, "\n") {
		if a, found := strings.CutPrefix(l, "listening on "); found {
			addr, ok = a, true
		}
	}
	if !ok {
		t.Fatalf("listener stderr %q, want \"listening on ADDR\"", listener.stderr)
	}
	if _, err := peer.AddrInfoFromString(addr); err != nil || !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") {
		t.Errorf("listener published %q (%v), want /ip4/127.0.0.1/tcp/PORT/p2p/ID", addr, err)
	}
	if n := listLen(t, redis, tc.listKey); n != 0 {
		t.Errorf("%s holds %d entries after the test, want 0", tc.listKey, n)
	}

	// A listener that nobody stops fails when its timeout passes.
	start := time.Now()
	late := runIn(t.Context(), tc.vars(redis, false, "0.3"), "interop")
	if late.code != exitFailure {
		t.Errorf("listener reaching its timeout exited %d, want 1", late.code)
	}
	if !strings.Contains(late.stderr, "concord: interop: listener: the test timeout passed (") {
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
	_, _ = c.Do(t.Context(), 0, "DEL", tc.listKey)
	_ = c.Close()
	lonely := runIn(t.Context(), tc.vars(redis, true, "1"), "interop")
	if lonely.code != exitFailure {
		t.Errorf("dialer without a listener exited %d, want 1", lonely.code)
	}
	oneErrorLine(t, lonely, "waiting for the listener's address in Redis list \""+tc.listKey+"\"")
}

func listLen(t *testing.T, addr, key string) int64 {
	t.Helper()
	c, err := resp.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, err := c.Do(t.Context(), 0, "LLEN", key)
	if err != nil {
		t.Fatal(err)
	}
	return v.Int
}
