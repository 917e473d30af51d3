package host

import (
	"context"
	"testing"
	"time"
)

// TestSeqNeverRepeatsWithinIncarnation checks spec/duplicates.md §2:
// "Numbers never repeat within an incarnation", also after the accepting
// host has forgotten a peer that only dialed in (its state is dropped once
// its last connection closes). The per-peer counter this replaced restarted
// at 1 there.
func TestSeqNeverRepeatsWithinIncarnation(t *testing.T) {
	a, b := newHost(t, Config{}), newHost(t, Config{})
	for round := 1; round <= 2; round++ {
		if _, err := a.Connect(context.Background(), b.AddrInfo()); err != nil {
			t.Fatal(err)
		}
		if err := converged(t, a, b); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		ca, cb := a.Conns(b.ID())[0], b.Conns(a.ID())[0]
		if ca.Seq() != uint64(round) || cb.Seq() != uint64(round) {
			t.Errorf("round %d: sequence numbers: dialer %d, listener %d; want %d on both (connection number %d between them)",
				round, ca.Seq(), cb.Seq(), round, round)
		}
		_ = ca.Close()
		if !waitUntil(t, 2*time.Second, func() bool { return len(a.Conns(b.ID())) == 0 && len(b.Conns(a.ID())) == 0 }) {
			t.Fatalf("round %d: the closed connection is still in a table", round)
		}
	}
}
