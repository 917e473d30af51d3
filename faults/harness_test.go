package faults

// What the scenarios share besides the namespace harness (internal/nspeer):
// the replies of the fault commands of its program, and small fault steps.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/internal/nspeer"
	"github.com/concordp2p/concord/upgrader"
)

// lab is what the scenarios share: the peer program and the table.
type lab struct {
	prog *nspeer.Program

	mu    sync.Mutex
	rows  []*row
	loads []*loadRow
}

// newLab builds the peer program once for the whole suite, plain (not
// -race): FAULTS.md's timings are for an ordinary binary.
func newLab(t *testing.T) *lab {
	t.Helper()
	return &lab{prog: nspeer.Build(t, nspeer.BuildConfig{})}
}

// Replies of the commands only the fault suite sends.

// stateReply is nspeer.StateReply with each listener's counters.
type stateReply struct {
	nspeer.StateReply
	Listeners []upgrader.ListenerStats
}

type stallReply struct {
	nspeer.Result
	Written int
	Dur     time.Duration
	Idle    time.Duration
	Seq     uint64
}

type msgsReply struct {
	nspeer.Result
	Acked  []uint64
	Failed int
	Errs   []string
	Dur    time.Duration
}

type idsReply struct {
	nspeer.Result
	IDs      map[string]int `json:"ids"`
	Accepted int
}

type rawSendReply struct {
	nspeer.Result
	OK     []uint64 `json:"ok"`
	Failed int
	Dur    time.Duration
}

type floodReply struct {
	nspeer.Result
	Attempts, Connected, ConnectFailed, Refused, Held, Dropped int
	RefusedP50, RefusedP99, RefusedMax                         time.Duration
	DroppedMin, DroppedMax                                     time.Duration
	Dur                                                        time.Duration
}

// sysctl sets a per-namespace sysctl.
func sysctl(t *testing.T, h *netlab.Host, kv string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := h.Run(ctx, "sysctl", "-w", kv); err != nil {
		t.Fatalf("sysctl %s in %s: %v\n%s", kv, h.Name, err, out)
	}
}

// dropBareSYNs drops outgoing bare SYNs in both namespaces of pair and
// returns the function that removes the rules.
func dropBareSYNs(t *testing.T, pair *netlab.Pair) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rm, err := pair.DropBareSYNs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := rm(); err != nil {
			t.Fatalf("removing the SYN rules: %v", err)
		}
	}
}

// rule adds an iptables rule in h for the rest of the test and returns its
// removal.
func rule(t *testing.T, h *netlab.Host, chain string, spec ...string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rm, err := h.AddRule(ctx, netlab.Rule{Chain: chain, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := rm(); err != nil {
			t.Fatalf("removing rule %v: %v", spec, err)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func maxDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
