package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/peer"
)

// startListen runs `concord listen` in a goroutine and returns its first
// printed address; the listener stops (and must exit 0) at the test's end.
func startListen(t *testing.T, args ...string) string {
	t.Helper()
	addr, _ := startListenStderr(t, args...)
	return addr
}

// startListenStderr is startListen that also returns listen's stderr.
func startListenStderr(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runEnv(ctx, append([]string{"listen"}, args...), &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("listen exited %d after cancel, want 0; stderr %q", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("listen did not exit within 10s of cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if s := out.String(); strings.Contains(s, "\n") {
			return strings.SplitN(s, "\n", 2)[0], &errb
		}
		select {
		case code := <-done:
			t.Fatalf("listen exited %d before printing an address; stderr %q", code, errb.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	t.Fatalf("listen printed no address within 10s")
	return "", nil
}

func TestListenPingPerf(t *testing.T) {
	addr := startListen(t, "-listen", "/ip4/127.0.0.1/tcp/0")
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil || len(ai.Addrs) != 1 || !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/") {
		t.Fatalf("listen printed %q (%v), want /ip4/127.0.0.1/tcp/PORT/p2p/ID", addr, err)
	}

	t.Run("ping", func(t *testing.T) {
		r := runCmd(t, "ping", "-count", "3", "-interval", "10ms", addr)
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("ping: exit %d, stderr %q, want 0", r.code, r.stderr)
		}
		for _, want := range []string{"PING " + ai.ID.String(), "ping 1: rtt ", "ping 3: rtt ", "--- 3 sent, 3 answered, 0% lost; rtt min/avg/max"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("ping output lacks %q:\n%s", want, r.stdout)
			}
		}
	})

	t.Run("perf", func(t *testing.T) {
		r := runCmd(t, "perf", addr, "-upload-bytes", "100000", "-download-bytes", "300000")
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("perf: exit %d, stderr %q, want 0", r.code, r.stderr)
		}
		for _, want := range []string{"upload    97.7 KiB in ", "download  293.0 KiB in ", "MB/s", "to connect"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("perf output lacks %q:\n%s", want, r.stdout)
			}
		}
		if strings.Contains(r.stdout, "\r") {
			t.Errorf("perf drew a progress line although stdout is not a terminal: %q", r.stdout)
		}
	})

	t.Run("perf-json", func(t *testing.T) {
		r := runCmd(t, "perf", "--json", "--upload-bytes", "5000", "--download-bytes", "7000", addr)
		if r.code != exitOK {
			t.Fatalf("perf -json: exit %d, stderr %q, want 0", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		var final struct {
			Type          string  `json:"type"`
			TimeSeconds   float64 `json:"timeSeconds"`
			UploadBytes   uint64  `json:"uploadBytes"`
			DownloadBytes uint64  `json:"downloadBytes"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &final); err != nil {
			t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
		}
		if final.Type != "final" || final.UploadBytes != 5000 || final.DownloadBytes != 7000 || final.TimeSeconds <= 0 {
			t.Errorf("final line = %+v, want type final, 5000 up, 7000 down, a positive time", final)
		}
	})

	t.Run("perf-terminal", func(t *testing.T) {
		var out, errb syncBuffer
		code := runEnv(t.Context(), []string{"perf", "-upload-bytes", "0", "-download-bytes", "1000", addr},
			&env{stdout: &out, stderr: &errb, terminal: true})
		if code != exitOK {
			t.Fatalf("perf on a terminal: exit %d, stderr %q", code, errb.String())
		}
		// The progress line is erased before the results.
		if s := out.String(); !strings.HasPrefix(s, "\r") || !strings.Contains(s, "download  1000 B in ") {
			t.Errorf("perf on a terminal printed %q, want the progress line erased, then the results", s)
		}
	})

	t.Run("ping-wrong-peer", func(t *testing.T) {
		other, err := peer.GenerateKey(peer.Ed25519, nil)
		if err != nil {
			t.Fatal(err)
		}
		otherID, _ := peer.IDFromPrivateKey(other)
		wrong := fmt.Sprintf("%s/p2p/%s", ai.Addrs[0], otherID)
		r := runCmd(t, "ping", "-count", "1", "-timeout", "5s", wrong)
		if r.code != exitFailure {
			t.Errorf("ping to the wrong peer ID: exit %d, want 1", r.code)
		}
		// The expected ID in full (to compare), elsewhere one short form.
		oneErrorLine(t, r, "ping: host: dialing "+otherID.ShortString())
		oneErrorLine(t, r, "expected "+otherID.String())
		s := otherID.String()
		if strings.Count(r.stderr, s[len(s)-6:]) != strings.Count(r.stderr, otherID.ShortString())+strings.Count(r.stderr, s) {
			t.Errorf("stderr %q abbreviates %s other than as %s", r.stderr, otherID, otherID.ShortString())
		}
	})
}

func TestPingNobodyListening(t *testing.T) {
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	// Port 1 on loopback: nothing listens there, the connect is refused.
	r := runCmd(t, "ping", "-count", "1", "-timeout", "3s", "/ip4/127.0.0.1/tcp/1/p2p/"+id.String())
	if r.code != exitFailure || r.stdout != "" {
		t.Errorf("ping to a closed port: exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}
	oneErrorLine(t, r, "ping: host: dialing "+id.ShortString()+"; /ip4/127.0.0.1/tcp/1: tcp connect: connection refused\n")
}

func TestProgressLine(t *testing.T) {
	got := progressLine(perf.Progress{Elapsed: 1500 * time.Millisecond, Uploaded: 3 << 20, Downloaded: 2048,
		Interval: 500 * time.Millisecond, IntervalUploaded: 1_000_000, IntervalDownloaded: 0})
	want := "  1.5s  up 3.0 MiB  down 2.0 KiB  now 2.0 MB/s"
	if got != want {
		t.Errorf("progressLine = %q, want %q", got, want)
	}
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.00 GiB"} {
		if got := bytesString(n); got != want {
			t.Errorf("bytesString(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestListenShowsConnections: `concord listen` shows, for a connection a
// `concord ping` makes, one line when it opens (the pinger's peer ID in
// its short form, its address, role, security, muxer), one with what its
// identify said (agent, protocols, listen addresses) and one when it
// closes, with the reason; and ping prints what the listener's identify
// said.
func TestListenShowsConnections(t *testing.T) {
	dir := t.TempDir()
	pkey := filepath.Join(dir, "ping.key")
	addr, lerr := startListenStderr(t, "-listen", "/ip4/127.0.0.1/tcp/0", "-log-format", "json")
	r := runCmd(t, "ping", "-count", "2", "-interval", "20ms", "-key", pkey, addr)
	if r.code != exitOK {
		t.Fatalf("ping: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "identify: agent \"concord/") || !strings.Contains(r.stdout, "protocols, 1 listen addresses (signed)") {
		t.Errorf("ping printed no identify line with the listener's agent, protocols and address:\n%s", r.stdout)
	}
	pid := keyID(t, pkey).ShortString()
	closed := func(s string) bool {
		return findLog(logLines(t, s), "connection closed", map[string]any{"peer": pid}) != nil
	}
	if !lerr.waitFor(10*time.Second, closed) {
		t.Fatalf("listen logged no close of %s within 10s:\n%s", pid, lerr.String())
	}
	ll := logLines(t, lerr.String())

	opened := findLog(ll, "connection opened", map[string]any{"peer": pid, "direction": "inbound",
		"role": "responder", "security": "/noise", "muxer": "/yamux/1.0.0"})
	if opened == nil {
		t.Fatalf("listen logged no connection from %s with role, security and muxer:\n%s", pid, lerr.String())
	}
	if remote, _ := opened["remote"].(string); !strings.HasPrefix(remote, "/ip4/127.0.0.1/tcp/") {
		t.Errorf("connection opened: remote %q, want /ip4/127.0.0.1/tcp/PORT", remote)
	}

	id := findLog(ll, "peer identified", map[string]any{"peer": pid, "seq": opened["seq"]})
	if id == nil {
		t.Fatalf("listen logged no identify of %s:\n%s", pid, lerr.String())
	}
	if agent, _ := id["agent"].(string); !strings.HasPrefix(agent, "concord/") {
		t.Errorf("peer identified: agent %q, want concord/...", agent)
	}
	protos, _ := id["protocols"].([]any)
	if !slices.Contains(protos, any("/ipfs/ping/1.0.0")) || !slices.Contains(protos, any("/ipfs/id/1.0.0")) {
		t.Errorf("peer identified: protocols %v, want /ipfs/ping/1.0.0 and /ipfs/id/1.0.0 among them", protos)
	}
	if n, _ := id["protocol_count"].(float64); int(n) != len(protos) {
		t.Errorf("peer identified: protocol_count %v, but %d protocols listed", id["protocol_count"], len(protos))
	}
	// ping listens nowhere: its identify announces no address.
	if la, ok := id["listen_addrs"].([]any); !ok || len(la) != 0 {
		t.Errorf("peer identified: listen_addrs %v, want an empty list for a dial-only pinger", id["listen_addrs"])
	}
	if id["signed_record"] != true {
		t.Errorf("peer identified: signed_record %v, want true", id["signed_record"])
	}

	cl := findLog(ll, "connection closed", map[string]any{"peer": pid, "seq": opened["seq"]})
	if reason, _ := cl["reason"].(string); reason == "" {
		t.Errorf("connection closed without a reason: %v", cl)
	}
}
