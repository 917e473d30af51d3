package main

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics/scrape"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/peer"
)

// logLines parses JSON log lines, skipping the "created KEYFILE" notes.
func logLines(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "created ") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// findLog returns the first line with message msg whose attributes include
// want.
func findLog(lines []map[string]any, msg string, want map[string]any) map[string]any {
	for _, l := range lines {
		if l["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && l[k] == v
		}
		if ok {
			return l
		}
	}
	return nil
}

func keyID(t *testing.T, path string) peer.ID {
	t.Helper()
	k, err := peer.ReadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestKeyLogsMetrics: listen, ping and perf with -key, JSON logs and a
// metrics endpoint. The listener's log shows each connection with the
// dialer's key's peer ID, its security and muxer, and its close; ping -v
// shows its dial, the upgrade and the connection; the listener's metrics,
// scraped over HTTP, count the handshakes, the connections and perf's bytes.
func TestKeyLogsMetrics(t *testing.T) {
	dir := t.TempDir()
	lkey, pkey := filepath.Join(dir, "listen.key"), filepath.Join(dir, "client.key")
	addr, lerr := startListenStderr(t, "-listen", "/ip4/127.0.0.1/tcp/0", "-key", lkey, "-log-format", "json", "-metrics", "127.0.0.1:0")
	lid := keyID(t, lkey)
	if !strings.HasSuffix(addr, "/p2p/"+lid.String()) {
		t.Fatalf("listen with -key printed %q, want its key's ID %s", addr, lid)
	}

	r := runCmd(t, "ping", "-count", "2", "-interval", "10ms", "-key", pkey, "-v", "-log-format", "json", addr)
	if r.code != exitOK {
		t.Fatalf("ping: exit %d, stderr %q", r.code, r.stderr)
	}
	pid := keyID(t, pkey)
	if !strings.HasPrefix(r.stderr, "created "+pkey+"\n") {
		t.Errorf("ping -key with a new file: stderr %q, want it to start with \"created %s\"", r.stderr, pkey)
	}
	pl := logLines(t, r.stderr)
	if findLog(pl, "dialing", map[string]any{"peer": lid.ShortString()}) == nil {
		t.Errorf("ping -v logged no dial of %s:\n%s", lid.ShortString(), r.stderr)
	}
	if findLog(pl, "upgraded", map[string]any{"peer": lid.ShortString(), "security": "/noise", "muxer": "/yamux/1.0.0", "role": "initiator"}) == nil {
		t.Errorf("ping -v logged no upgrade with security, muxer and role:\n%s", r.stderr)
	}
	if findLog(pl, "connection opened", map[string]any{"peer": lid.ShortString(), "direction": "outbound"}) == nil {
		t.Errorf("ping -v logged no connection:\n%s", r.stderr)
	}

	r = runCmd(t, "perf", "-key", pkey, "-upload-bytes", "100000", "-download-bytes", "300000", addr)
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("perf: exit %d, stderr %q; want 0 and nothing on stderr without -v", r.code, r.stderr)
	}

	// The listener logs asynchronously to the clients' exit: wait for both
	// closes.
	var ll []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		ll = logLines(t, lerr.String())
		closed := 0
		for _, l := range ll {
			if l["msg"] == "connection closed" && l["peer"] == pid.ShortString() {
				closed++
			}
		}
		if closed == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	opened := findLog(ll, "connection opened", map[string]any{"peer": pid.ShortString(), "direction": "inbound",
		"security": "/noise", "muxer": "/yamux/1.0.0", "role": "responder", "inlined": true})
	if opened == nil {
		t.Errorf("listen logged no connection from %s (the client's -key) with its security, muxer, role:\n%s", pid.ShortString(), lerr.String())
	}
	if l := findLog(ll, "connection closed", map[string]any{"peer": pid.ShortString()}); l == nil || l["reason"] == "" {
		t.Errorf("listen logged no close with a reason:\n%s", lerr.String())
	}
	if findLog(ll, "upgraded", nil) != nil {
		t.Errorf("listen without -v logged upgrade steps:\n%s", lerr.String())
	}

	served := findLog(ll, "serving metrics", nil)
	if served == nil {
		t.Fatalf("listen -metrics did not log its URL:\n%s", lerr.String())
	}
	f, err := scrape.Families(t.Context(), served["url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"concord_handshakes_total", map[string]string{"direction": "inbound", "stage": "complete", "outcome": "ok"}, 2},
		{"concord_handshake_duration_seconds", map[string]string{"direction": "inbound", "stage": "security"}, 2},
		{"concord_connections_closed_total", nil, 2},
		{"concord_stream_bytes_total", map[string]string{"protocol": perf.ID, "direction": "sent"}, 300000},
		{"concord_stream_bytes_total", map[string]string{"protocol": perf.ID, "direction": "received"}, 100000 + 8},
		{"concord_stream_bytes_total", map[string]string{"protocol": "/ipfs/ping/1.0.0", "direction": "sent"}, 64},
	} {
		if got, ok := scrape.Value(f, c.name, c.labels); !ok || got < c.min {
			t.Errorf("%s%v = %v (found %v), want at least %v", c.name, c.labels, got, ok, c.min)
		}
	}
	for _, name := range []string{"concord_connections", "concord_streams"} {
		if _, ok := f[name]; !ok {
			t.Errorf("no %s in the exposition", name)
		}
	}
}

// TestDialSilentServer: a server that accepts and never answers. ping's
// error names the address, the stage and what it waited for, and the
// -timeout that ran out.
func TestDialSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	port := ln.Addr().(*net.TCPAddr).Port
	ma := "/ip4/127.0.0.1/tcp/" + strconv.Itoa(port)
	r := runCmd(t, "ping", "-count", "1", "-timeout", "1s", ma+"/p2p/"+id.String())
	if r.code != exitFailure {
		t.Errorf("ping to a silent server: exit %d, want 1", r.code)
	}
	for _, want := range []string{"ping: host: dialing " + id.ShortString(), "no connection within -timeout 1s",
		ma + ": simopen stage: ", "reading in state header"} {
		oneErrorLine(t, r, want)
	}
}
