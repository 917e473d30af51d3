package main

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/conformance"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/peer"
)

func TestConformanceUsageErrors(t *testing.T) {
	const target = "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBhBsAyLCcGphxMWsE834B1uK6baDbCcp1qsWW93Xjxve"
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"conformance"}, "want MULTIADDR, or -listen"},
		{[]string{"conformance", target, target}, "want at most one MULTIADDR, got 2"},
		{[]string{"conformance", "/ip4/127.0.0.1/tcpx/1"}, `conformance: bad MULTIADDR "/ip4/127.0.0.1/tcpx/1": unknown protocol tcpx`},
		{[]string{"conformance", "/dns4/example.com/tcp/1"}, "want /ip4/.../tcp/..."},
		{[]string{"conformance", "-run", "(", target}, `conformance: -run "(":`},
		{[]string{"conformance", "-run", "^nothing$", target}, `-run "^nothing$" matches no case`},
		{[]string{"conformance", "-peer", "Qm", target}, `conformance: -peer "Qm"`},
		{[]string{"conformance", "-listen", "/ip4/127.0.0.1/udp/1"}, `-listen "/ip4/127.0.0.1/udp/1": want /ip4/.../tcp/PORT`},
		{[]string{"conformance", "-answer-timeout", "0s", target}, "must be positive"},
	}
	for _, tt := range tests {
		r := runCmd(t, tt.args...)
		if r.code != exitUsage {
			t.Errorf("concord %q exited %d, want %d (stderr %q)", tt.args, r.code, exitUsage, r.stderr)
		}
		oneErrorLine(t, r, tt.want)
		if !strings.HasSuffix(r.stderr, " (see 'concord conformance -h')\n") {
			t.Errorf("concord %q: stderr %q lacks the (see 'concord conformance -h') hint", tt.args, r.stderr)
		}
		if r.stdout != "" {
			t.Errorf("concord %q printed %q on stdout, want nothing", tt.args, r.stdout)
		}
	}
}

// TestConformanceAgainstConcord runs a few cases against a Concord host,
// as a table and as JSON. The whole suite is run by package conformance.
func TestConformanceAgainstConcord(t *testing.T) {
	h, err := host.New(host.Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	target := h.Addrs()[0].String() + "/p2p/" + h.ID().String()

	r := runCmd(t, "conformance", "-run", "^(mss-select|noise-handshake|tls-expired|simopen-election-tie)$", target)
	if r.code != exitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"CASE", "mss-select", "multistream 3.2", "pass", "simopen-election-tie", "n/a", "4 cases: 3 pass, 0 fail, 1 n/a"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table %q lacks %q", r.stdout, want)
		}
	}

	r = runCmd(t, "conformance", "-json", "-run", "^mss-select$", target)
	var results []conformance.Result
	if err := json.Unmarshal([]byte(r.stdout), &results); err != nil || r.code != exitOK {
		t.Fatalf("exit %d, stdout %q: %v", r.code, r.stdout, err)
	}
	if len(results) != 1 || results[0].ID != "mss-select" || results[0].Outcome != conformance.Pass {
		t.Errorf("results = %+v, want mss-select passing", results)
	}
}

// TestConformanceFailureExit checks exit code 1 against a TCP server that
// speaks no libp2p: it accepts and stays silent.
func TestConformanceFailureExit(t *testing.T) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100; i++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		ln.Close()
		wg.Wait()
		for _, c := range conns {
			c.Close()
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	r := runCmd(t, "conformance", "-answer-timeout", "100ms", "-run", "^mss-select$", "/ip4/127.0.0.1/tcp/"+strconv.Itoa(a.Port))
	if r.code != exitFailure {
		t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", r.code, exitFailure, r.stdout, r.stderr)
	}
	oneErrorLine(t, r, "conformance: a case failed")
	if !strings.Contains(r.stdout, "fail") {
		t.Errorf("table %q shows no failure", r.stdout)
	}
}

// lineWriter passes each write to a channel as well as to a buffer.
type lineWriter struct {
	syncBuffer
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	select {
	case w.lines <- string(p):
	default:
	}
	return w.syncBuffer.Write(p)
}

// TestConformanceListenMode runs a listen case: the command prints the
// address to dial, and a Concord host dials it.
func TestConformanceListenMode(t *testing.T) {
	var out syncBuffer
	errw := &lineWriter{lines: make(chan string, 16)}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- runEnv(ctx, []string{"conformance", "-listen", "/ip4/127.0.0.1/tcp/0", "-run", "^simopen-election-runner-wins$"},
			&env{stdout: &out, stderr: errw, getenv: func(string) string { return "" }})
	}()
	var addr string
	for i := 0; i < 16 && addr == ""; i++ {
		select {
		case l := <-errw.lines:
			if _, a, ok := strings.Cut(strings.TrimSpace(l), "dial "); ok {
				addr = strings.Fields(a)[0]
			}
		case c := <-code:
			t.Fatalf("exited %d before printing the address: %q", c, errw.String())
		}
	}
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		t.Fatalf("printed address %q: %v", addr, err)
	}
	h, err := host.New(host.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, _ = h.Connect(ctx, *ai)
	if c := <-code; c != exitOK {
		t.Fatalf("exit %d, stdout %q, stderr %q", c, out.String(), errw.String())
	}
	if !strings.Contains(out.String(), "1 cases: 1 pass") {
		t.Errorf("stdout %q, want the one case passing", out.String())
	}
}
