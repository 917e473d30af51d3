package host

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/concordp2p/concord/peer"
)

func ids(t *testing.T) (small, large peer.ID) {
	a, b := peer.ID("\x00\x01small"), peer.ID("\x00\x02large")
	if !(a < b) {
		t.Fatal("test IDs out of order")
	}
	return a, b
}

func TestResolveLargerPeersNewestWins(t *testing.T) {
	small, large := ids(t)
	inc := Incarnation{1}
	// Two connections; the larger peer numbered them 3 and 4, the smaller
	// 7 and 6 (it saw them complete in the other order).
	atLarge := []candidate{
		{helloDone: true, localSeq: 3, remote: hello{inc, 7}},
		{helloDone: true, localSeq: 4, remote: hello{inc, 6}},
	}
	v := resolve(large, small, inc, atLarge)
	if v.survivor != 1 || !slices.Equal(v.losers, []int{0}) || len(v.stale) != 0 {
		t.Errorf("at the larger peer: %+v, want survivor 1 (its seq 4), loser 0", v)
	}
	// The smaller peer sees the same connections from its side.
	atSmall := []candidate{
		{helloDone: true, localSeq: 6, remote: hello{inc, 4}},
		{helloDone: true, localSeq: 7, remote: hello{inc, 3}},
	}
	v = resolve(small, large, inc, atSmall)
	if v.survivor != 0 || !slices.Equal(v.losers, []int{1}) {
		t.Errorf("at the smaller peer: %+v, want survivor 0 (larger's seq 4), loser 1", v)
	}
}

func TestResolveStaleIncarnation(t *testing.T) {
	small, large := ids(t)
	old, cur := Incarnation{1}, Incarnation{2}
	cs := []candidate{
		{helloDone: true, localSeq: 9, remote: hello{old, 50}},
		{helloDone: true, localSeq: 10, remote: hello{cur, 1}},
		{helloDone: false, localSeq: 11},
	}
	v := resolve(large, small, cur, cs)
	if v.survivor != 1 || !slices.Equal(v.stale, []int{0}) || len(v.losers) != 0 {
		t.Errorf("got %+v, want survivor 1, stale 0, pending 2 untouched", v)
	}
}

func TestResolveNothingToDo(t *testing.T) {
	small, large := ids(t)
	v := resolve(small, large, Incarnation{}, []candidate{{localSeq: 1}})
	if v.survivor != -1 || len(v.losers)+len(v.stale) != 0 {
		t.Errorf("no hello yet: got %+v, want no decision", v)
	}
}

// TestResolveBothEndsAgree builds random connection sets seen from both
// ends, reveals the hellos in different orders at each end, and checks at
// every step that the two ends never close the connection the other keeps
// as final survivor, and agree once all hellos are known.
func TestResolveBothEndsAgree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for iter := range 2000 {
		a, b := peer.ID([]byte{0, byte(r.IntN(256))}), peer.ID([]byte{0, byte(r.IntN(256))})
		if a == b {
			continue
		}
		incA, incB := Incarnation{byte(iter)}, Incarnation{byte(iter), 1}
		n := 1 + r.IntN(5)
		seqA, seqB := r.Perm(n), r.Perm(n) // each end numbers them in its own order
		final := -1
		for _, side := range []int{0, 1} {
			order := r.Perm(n)
			known := make([]bool, n)
			closed := map[int]bool{}
			var last verdict
			for _, k := range order {
				known[k] = true
				cs := make([]candidate, n)
				for i := range n {
					if side == 0 {
						cs[i] = candidate{helloDone: known[i], localSeq: uint64(seqA[i] + 1), remote: hello{incB, uint64(seqB[i] + 1)}}
					} else {
						cs[i] = candidate{helloDone: known[i], localSeq: uint64(seqB[i] + 1), remote: hello{incA, uint64(seqA[i] + 1)}}
					}
				}
				local, remote, latest := a, b, incB
				if side == 1 {
					local, remote, latest = b, a, incA
				}
				last = resolve(local, remote, latest, cs)
				for _, l := range last.losers {
					closed[l] = true
				}
			}
			if side == 0 {
				final = last.survivor
			} else if last.survivor != final {
				t.Fatalf("iter %d: ends disagree: survivor %d vs %d", iter, final, last.survivor)
			}
			if closed[final] {
				t.Fatalf("iter %d: side %d closed the final survivor %d on the way", iter, side, final)
			}
		}
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := hello{Incarnation{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 42}
	b := h.marshal()
	if len(b) != helloLen || b[0] != helloVersion {
		t.Fatalf("marshal = %x", b)
	}
	got, err := readHello(bytes.NewReader(b))
	if err != nil || got != h {
		t.Fatalf("readHello = %+v, %v; want %+v", got, err, h)
	}
	for name, bad := range map[string][]byte{
		"short":    b[:helloLen-1],
		"long":     append(slices.Clone(b), 0),
		"version":  append([]byte{2}, b[1:]...),
		"zero seq": append(slices.Clone(b[:17]), 0, 0, 0, 0, 0, 0, 0, 0),
		"empty":    nil,
	} {
		if _, err := readHello(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s: readHello accepted %x", name, bad)
		}
	}
}

func FuzzReadHello(f *testing.F) {
	f.Add(hello{Incarnation{1}, 1}.marshal())
	f.Add([]byte{1})
	f.Add(bytes.Repeat([]byte{1}, 40))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := readHello(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever parses is exactly one canonical message.
		if !bytes.Equal(h.marshal(), b) {
			t.Fatalf("parsed %x as %+v, which marshals to %x", b, h, h.marshal())
		}
	})
}
