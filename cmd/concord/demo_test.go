package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host"
)

func TestDemo(t *testing.T) {
	r := runCmd(t, "demo", "-rounds", "3", "-perf-bytes", "262144")
	if r.code != exitOK {
		t.Fatalf("demo exited %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r.stderr != "" {
		t.Errorf("demo wrote %q on stderr, want nothing", r.stderr)
	}
	for _, want := range []string{"round 1 ", "round 3 ", "summary   3 rounds: 3 ok, 0 failed", "upgrade   /noise, /yamux/1.0.0", "median"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, " ok\n"); n != 3 {
		t.Errorf("%d rounds reported ok, want 3:\n%s", n, r.stdout)
	}
}

// TestDemoJSON checks each round's record for consistency: what TCP
// produced, the election, the resolutions and the survivor must agree.
func TestDemoJSON(t *testing.T) {
	r := runCmd(t, "demo", "-rounds", "4", "-json", "-perf-bytes", "65536")
	if r.code != exitOK {
		t.Fatalf("demo -json exited %d, want 0; stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 5 {
		t.Fatalf("demo -json printed %d lines, want 4 rounds and a summary:\n%s", len(lines), r.stdout)
	}
	for i, line := range lines[:4] {
		var rr roundResult
		if err := json.Unmarshal([]byte(line), &rr); err != nil {
			t.Fatalf("round line %d: %v: %s", i+1, err, line)
		}
		if rr.Round != i+1 || !rr.OK || rr.Error != "" {
			t.Errorf("round %d: round=%d ok=%v error=%q, want round %d ok", i+1, rr.Round, rr.OK, rr.Error, i+1)
		}
		if rr.PingMs <= 0 || rr.PerfMBps <= 0 {
			t.Errorf("round %d: ping %v ms, perf %v MB/s, want both measured", i+1, rr.PingMs, rr.PerfMBps)
		}
		if rr.SurvivorA == 0 || rr.SurvivorB == 0 {
			t.Errorf("round %d: survivor seqs %d/%d, want both set", i+1, rr.SurvivorA, rr.SurvivorB)
		}
		switch rr.Outcome {
		case outcomeSimopen:
			if rr.Election == nil {
				t.Errorf("round %d: simultaneous open without an election record", i+1)
			}
		case outcomeCrossing:
			if len(rr.Resolutions) == 0 {
				t.Errorf("round %d: crossing dials but no resolution reported", i+1)
			}
			if rr.Election != nil {
				t.Errorf("round %d: crossing dials with an election on the survivor: %+v", i+1, rr.Election)
			}
		case outcomeSingle:
		default:
			t.Errorf("round %d: outcome %q", i+1, rr.Outcome)
		}
		for _, d := range rr.Resolutions {
			if d.Rule != string(host.ResolvedBySequence) && d.Rule != string(host.ResolvedByIncarnation) && d.Rule != string(host.ResolvedByProbe) {
				t.Errorf("round %d: resolution rule %q", i+1, d.Rule)
			}
			want := rr.SurvivorA
			if d.Side == "b" {
				want = rr.SurvivorB
			}
			if d.SurvivorSeq != want || d.ClosedSeq == want {
				t.Errorf("round %d: %s kept #%d and closed #%d, but #%d survived", i+1, d.Side, d.SurvivorSeq, d.ClosedSeq, want)
			}
		}
	}
	var sum struct {
		Summary demoSummary `json:"summary"`
	}
	if err := json.Unmarshal([]byte(lines[4]), &sum); err != nil {
		t.Fatalf("summary line: %v: %s", err, lines[4])
	}
	if s := sum.Summary; s.Rounds != 4 || s.OK != 4 || s.Failed != 0 || s.MedianPingMs <= 0 {
		t.Errorf("summary = %+v, want 4 rounds, 4 ok, a median ping", s)
	}
}

// TestDemoFailsWithoutResolution runs the demo with hosts that keep every
// connection (libp2p's behaviour): a round with crossing dials then ends
// with two connections, and the demo must say so and exit 1. This is the
// check that the demo's verdict can fail at all.
func TestDemoFailsWithoutResolution(t *testing.T) {
	var out, errb syncBuffer
	e := &env{stdout: &out, stderr: &errb}
	o := demoOptions{rounds: 6, wait: 100 * time.Millisecond, tweak: func(c *host.Config) { c.KeepAll = true }}
	err := runDemo(t.Context(), e, o)
	if !strings.Contains(out.String(), outcomeCrossing) {
		t.Fatalf("no round produced crossing dials, so nothing could fail:\n%s", out.String())
	}
	if code := fail(e, err); code != exitFailure {
		t.Fatalf("demo with KeepAll hosts: exit %d, want %d\n%s", code, exitFailure, out.String())
	}
	oneErrorLine(t, result{stderr: errb.String()}, "did not end with exactly one live connection")
	if !strings.Contains(out.String(), "FAILED: not converged within 100ms: a holds 2 connections to b") {
		t.Errorf("the failed round does not say why:\n%s", out.String())
	}
}

func TestConvergedWhyNot(t *testing.T) {
	newHost := func() *host.Host {
		h, err := host.New(host.Config{ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}, KeepAll: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	a, b := newHost(), newHost()
	if why := convergedWhyNot(a, b); !strings.Contains(why, "a holds 0 connections to b, b holds 0") {
		t.Errorf("no connections: %q", why)
	}
	ctx := t.Context()
	if _, err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := converge(ctx, a, b, time.Second); err != nil {
		t.Fatalf("one connection: %v", err)
	}
	// A second connection (KeepAll keeps it) must be seen.
	for range 20 {
		if len(a.Conns(b.ID())) == 2 {
			break
		}
		var wg sync.WaitGroup
		for _, c := range a.Conns(b.ID()) {
			_ = c.Close()
		}
		wg.Go(func() { _, _ = a.Connect(ctx, b.AddrInfo()) })
		wg.Go(func() { _, _ = b.Connect(ctx, a.AddrInfo()) })
		wg.Wait()
		_ = converge(ctx, a, b, 50*time.Millisecond)
	}
	if n := len(a.Conns(b.ID())); n != 2 {
		t.Skipf("could not make a second connection in 20 tries (a holds %d)", n)
	}
	if err := converge(ctx, a, b, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "holds 2") {
		t.Errorf("two connections: converge = %v, want a \"holds 2\" error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := converge(cctx, a, b, time.Minute); err == nil {
		t.Errorf("converge with a cancelled context succeeded")
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDemoInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := runIn(ctx, nil, "demo", "-rounds", "3")
	if r.code != exitFailure || r.stdout != "" {
		t.Errorf("interrupted demo: exit %d, stdout %q; want 1 and no round printed", r.code, r.stdout)
	}
	oneErrorLine(t, r, "demo: interrupted")
}
