package host

import (
	"github.com/concordp2p/concord/peer"
)

// The duplicate-resolution rule (spec/duplicates.md), as a pure function so
// both ends can be shown to compute the same answer.
//
// Every connection between hosts A and B carries, once both hellos have
// crossed, four facts known to both ends: A's incarnation and its sequence
// number for the connection, and B's. From them:
//
//  1. Incarnation: the connections whose remote incarnation is not the one
//     of the most recent hello are stale — that process is gone — and are
//     closed at once (Foolscap's fix for its ticket #28).
//  2. Survivor: among the rest, the connection with the highest sequence
//     number given by the peer with the larger peer ID (bytewise) survives;
//     the others lose, drain their streams for a grace period and close.
//     Both ends know both sequence numbers, so both pick the same
//     survivor; the newest connection (as the larger peer counts) wins,
//     which is the live one when a peer reconnected over a silently dead
//     path.
//
// Connections whose hello has not arrived yet are left alone: they take
// part once it does. The rule never closes the survivor, so it never leaves
// the pair with no connection.

// candidate is what the rule knows of one connection.
type candidate struct {
	helloDone bool
	remote    hello  // the peer's hello, valid when helloDone
	localSeq  uint64 // our sequence number for the connection
}

// verdict is the rule's decision for the connections it was given, as
// indexes into its input.
type verdict struct {
	survivor int   // -1 when no connection has its hello yet
	stale    []int // close at once
	losers   []int // drain, then close
}

func resolve(local, remote peer.ID, latest Incarnation, cs []candidate) verdict {
	v := verdict{survivor: -1}
	largerIsLocal := local > remote
	// beats orders connections by the larger peer's sequence number, then
	// by the smaller peer's (equal only if a peer reuses numbers, which an
	// honest one never does; the order stays total and the same on both
	// ends either way).
	beats := func(a, b candidate) bool {
		la, sa, lb, sb := a.localSeq, a.remote.Seq, b.localSeq, b.remote.Seq
		if !largerIsLocal {
			la, sa, lb, sb = sa, la, sb, lb
		}
		if la != lb {
			return la > lb
		}
		return sa > sb
	}
	for i, c := range cs {
		if !c.helloDone {
			continue
		}
		if c.remote.Incarnation != latest {
			v.stale = append(v.stale, i)
			continue
		}
		if v.survivor < 0 || beats(c, cs[v.survivor]) {
			if v.survivor >= 0 {
				v.losers = append(v.losers, v.survivor)
			}
			v.survivor = i
		} else {
			v.losers = append(v.losers, i)
		}
	}
	return v
}
