package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// result is what one in-process run of the command produced.
type result struct {
	code           int
	stdout, stderr string
}

// runIn runs the command in-process with the environment variables vars
// (nothing else of the real environment is visible).
func runIn(ctx context.Context, vars map[string]string, args ...string) result {
	var out, errb syncBuffer
	code := runEnv(ctx, args, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

func runCmd(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return runIn(ctx, nil, args...)
}

// syncBuffer is a bytes.Buffer safe for a command writing in one goroutine
// while the test reads in another.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wrote chan struct{} // signalled (without blocking) after each write; see waitFor
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.wrote != nil {
		select {
		case b.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}

// waitFor waits until ok holds for the buffer's contents, checking after
// each write, at most timeout; it reports whether ok held.
func (b *syncBuffer) waitFor(timeout time.Duration, ok func(string) bool) bool {
	b.mu.Lock()
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	wrote := b.wrote
	b.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		if ok(b.String()) {
			return true
		}
		select {
		case <-wrote:
		case <-t.C:
			return ok(b.String())
		}
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// oneErrorLine checks that stderr is exactly one line starting "concord: "
// and containing want.
func oneErrorLine(t *testing.T, r result, want string) {
	t.Helper()
	if !strings.HasPrefix(r.stderr, "concord: ") || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("stderr = %q, want one line starting \"concord: \"", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.stderr, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"help", "frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"demo", "-rounds", "x"}, `demo: -rounds "x": want an integer`},
		{[]string{"demo", "-rounds", "99999999999999999999"}, `demo: -rounds "99999999999999999999": want an integer in range`},
		{[]string{"demo", "-wait", "soon"}, `demo: -wait "soon": want a duration such as 500ms`},
		{[]string{"ping", "-log-format", "xml", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBhBsAyLCcGphxMWsE834B1uK6baDbCcp1qsWW93Xjxve"}, `ping: -log-format "xml": want text or json`},
		{[]string{"demo", "-rounds", "0"}, "-rounds must be at least 1"},
		{[]string{"demo", "extra"}, `unexpected argument "extra"`},
		{[]string{"demo", "-security", "plaintext"}, `demo: -security "plaintext": want noise, tls or a list`},
		{[]string{"demo", "-security", "tls,plaintext"}, `unknown security protocol "plaintext"`},
		{[]string{"id", "-nope"}, "flag provided but not defined: -nope"},
		{[]string{"listen", "-listen", "/ip4/1.2.3.4/tcq/1"}, `listen: -listen "/ip4/1.2.3.4/tcq/1": unknown protocol tcq`},
		{[]string{"ping"}, "want ADDR, got 0"},
		{[]string{"ping", "/ip4/127.0.0.1/tcp/1"}, "ADDR"},
		{[]string{"ping", "/ip4/127.0.0.1/tcpx/1/p2p/12D3KooWBhBsAyLCcGphxMWsE834B1uK6baDbCcp1qsWW93Xjxve"}, `ping: bad ADDR "/ip4/127.0.0.1/tcpx/1/p2p/12D3KooWBhBsAyLCcGphxMWsE834B1uK6baDbCcp1qsWW93Xjxve": unknown protocol tcpx`},
		{[]string{"ping", "-count", "0", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBhBsAyLCcGphxMWsE834B1uK6baDbCcp1qsWW93Xjxve"}, "-count must be at least 1"},
		{[]string{"perf", "a", "b"}, "want ADDR, got 2"},
		{[]string{"perf", "-upload-bytes", "-1", "x"}, `perf: -upload-bytes "-1": want a non-negative integer`},
		{[]string{"interop", "x"}, "unexpected argument"},
	}
	for _, tt := range tests {
		r := runCmd(t, tt.args...)
		if r.code != exitUsage {
			t.Errorf("concord %q exited %d, want %d (stderr %q)", tt.args, r.code, exitUsage, r.stderr)
		}
		oneErrorLine(t, r, tt.want)
		// One style: the reason, then where to look; each value quoted once.
		if tt.args[0] != "frobnicate" && tt.args[0] != "help" && !strings.HasSuffix(r.stderr, " (see 'concord "+tt.args[0]+" -h')\n") {
			t.Errorf("concord %q: stderr %q does not end with the (see 'concord %s -h') hint", tt.args, r.stderr, tt.args[0])
		}
		for _, a := range tt.args[1:] {
			if n := strings.Count(r.stderr, strconv.Quote(a)); len(a) > 3 && n > 1 {
				t.Errorf("concord %q: stderr %q quotes %q %d times", tt.args, r.stderr, a, n)
			}
		}
		if r.stdout != "" {
			t.Errorf("concord %q printed %q on stdout, want nothing", tt.args, r.stdout)
		}
	}
}

func TestUsageNoArguments(t *testing.T) {
	r := runCmd(t)
	if r.code != exitUsage || !strings.Contains(r.stderr, "Usage:") || r.stdout != "" {
		t.Errorf("concord with no arguments: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", r.code, r.stdout, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		r := runCmd(t, args...)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("concord %q: exit %d, stderr %q; want 0 and nothing on stderr", args, r.code, r.stderr)
		}
		for _, want := range []string{"Usage:", "Exit codes:", "127", "demo", "interop"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("concord %q: usage lacks %q:\n%s", args, want, r.stdout)
			}
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "-h"}, {c.name, "--help"}, {"help", c.name}} {
			r := runCmd(t, args...)
			if r.code != exitOK || r.stderr != "" || !strings.HasPrefix(r.stdout, "Usage: concord "+c.name) || !strings.Contains(r.stdout, "Exit codes:") {
				t.Errorf("concord %q: exit %d, stderr %q, stdout %q; want 0 and the command's usage", args, r.code, r.stderr, r.stdout)
			}
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs, _ := newFlagSet(perfCommand)
	pos, err := parseInterspersed(fs, []string{"ADDR", "-upload-bytes", "5", "--download-bytes=7", "--", "-json"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "ADDR -json" {
		t.Errorf("positional = %q, want [ADDR -json]", pos)
	}
	if up, down := fs.Lookup("upload-bytes").Value.String(), fs.Lookup("download-bytes").Value.String(); up != "5" || down != "7" {
		t.Errorf("upload-bytes=%s download-bytes=%s, want 5 and 7", up, down)
	}
	if j := fs.Lookup("json").Value.String(); j != "false" {
		t.Errorf("-json after -- was parsed as a flag: %s", j)
	}
}

func TestFailOneLine(t *testing.T) {
	var out, errb bytes.Buffer
	code := fail(&env{stdout: &out, stderr: &errb}, errorString("first line\nsecond   line"))
	if code != exitFailure || errb.String() != "concord: first line; second line\n" {
		t.Errorf("fail = %d, %q; want 1, %q", code, errb.String(), "concord: first line; second line\n")
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
