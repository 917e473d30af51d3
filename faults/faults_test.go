package faults

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/muxer/yamux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// row is one line of the suite's table. A scenario fills it as it goes;
// Result is set when the scenario ends.
type row struct {
	Scenario string
	Seed     string
	Runs     int
	Outcome  string
	Timings  string
	Result   string
}

// row registers a table row for t's scenario; its result is recorded when
// t ends, pass or fail.
func (l *lab) row(t *testing.T, scenario, seed string) *row {
	r := &row{Scenario: scenario, Seed: seed}
	l.mu.Lock()
	l.rows = append(l.rows, r)
	l.mu.Unlock()
	t.Cleanup(func() {
		switch {
		case t.Failed():
			r.Result = "FAIL"
		case t.Skipped():
			r.Result = "skip"
		default:
			r.Result = "pass"
		}
	})
	return r
}

// table renders the rows as a Markdown table.
func (l *lab) table() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	b.WriteString("| scenario | seed | runs | outcome | key timings | result |\n|---|---|---|---|---|---|\n")
	rows := slices.Clone(l.rows)
	slices.SortStableFunc(rows, func(a, b *row) int { return strings.Compare(a.Scenario, b.Scenario) })
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s |\n", r.Scenario, r.Seed, r.Runs, r.Outcome, r.Timings, r.Result)
	}
	return b.String()
}

// TestFaults runs every scenario of the fault suite, each in its own
// namespace pair and in parallel with the others, and logs the table at
// the end (FAULTS.md explains each row):
//
//	go test -run TestFaults -v ./faults/
func TestFaults(t *testing.T) {
	netlab.Require(t)
	l := newLab(t)
	t.Cleanup(func() { t.Logf("fault suite results:\n%s", l.table()) })
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *lab)
	}{
		{"simopen-syndrop", testSimopenSYNDrop},
		{"simopen-inflight", testSimopenInFlight},
		{"restart-listenport", func(t *testing.T, l *lab) { testRestart(t, l, false) }},
		{"restart-ephemeral", func(t *testing.T, l *lab) { testRestart(t, l, true) }},
		{"forgot-syncookies", testForgotSyncookies},
		{"forgot-restart", testForgotRestart},
		{"forgot-silent", testForgotSilent},
		{"overflow", testOverflow},
		{"noread-stall", func(t *testing.T, l *lab) { testNoReadStall(t, l, stallTimeout, 3) }},
		{"noread-stall-default", func(t *testing.T, l *lab) { testNoReadStall(t, l, yamux.DefaultWriteStallTimeout, 1) }},
		{"bound-handshake-out", testBoundHandshakeOut},
		{"bound-first-byte", func(t *testing.T, l *lab) { testBoundInbound(t, l, false) }},
		{"bound-handshake-in", func(t *testing.T, l *lab) { testBoundInbound(t, l, true) }},
		{"bound-close", testBoundClose},
		{"bound-negotiation", testBoundNegotiation},
		{"bound-hello", testBoundHello},
		{"bound-duplicate-grace", testBoundDuplicateGrace},
		{"noread-frozen-short", func(t *testing.T, l *lab) { testFrozen(t, l, true) }},
		{"noread-frozen-default", func(t *testing.T, l *lab) { testFrozen(t, l, false) }},
		{"load", testLoad},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, l)
		})
	}
}

// TestAttacks runs the attacks on admission (attack_test.go) one after
// another, not beside the other scenarios: each saturates the machine's
// cores for attackDur, and its figures are the point. It logs the rows and
// FAULTS.md's load table:
//
//	go test -run TestAttacks -v ./faults/
func TestAttacks(t *testing.T) {
	netlab.Require(t)
	l := newLab(t)
	t.Cleanup(func() { t.Logf("attack results:\n%s\nload table:\n%s", l.table(), l.loadTable()) })
	for i, a := range []attack{
		{addrs: 1}, {addrs: 200},
		{addrs: 1, trickle: 50 * time.Millisecond}, {addrs: 200, trickle: 50 * time.Millisecond},
	} {
		a.port = 48010 + i
		t.Run(fmt.Sprintf("%s-%d", strings.Fields(a.what())[0], a.addrs), func(t *testing.T) { testAttack(t, l, a) })
	}
}
