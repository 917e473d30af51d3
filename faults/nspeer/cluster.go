package main

// The cluster commands: keep, table, counters.

import (
	"errors"
	"fmt"
	"sync"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/upgrader"
)

// keep asks the host to keep connected to each PEER MADDR pair of args.
func (p *peerProc) keep(args []string) reply {
	if len(args)%2 != 0 {
		return errReply(fmt.Errorf("keep: %d arguments, want PEER MADDR pairs", len(args)))
	}
	for i := 0; i < len(args); i += 2 {
		ai, err := addrInfo(args[i], args[i+1])
		if err != nil {
			return errReply(err)
		}
		p.h.KeepConnected(ai.ID, ai.Addrs...)
	}
	return reply{}
}

// table reports every connection of the host's table, by peer.
func (p *peerProc) table() reply {
	peers := map[string][]reply{}
	for _, id := range p.h.Peers() {
		var conns []reply
		for _, c := range p.h.Conns(id) {
			conns = append(conns, connReply(c))
		}
		peers[id.String()] = conns
	}
	return reply{"peers": peers}
}

// counters counts what the host reported through its observer. A
// simultaneous open is an outbound upgrade that met a dialer on the other
// end (an election ran, or failed with a tie); an election is a connection
// that joined the table after one; a tie break is an election of equal
// numbers the peer-ID order decided; a tie is an upgrade that failed on
// equal numbers without peer IDs (redialed). A dial failure is what
// schedules a backoff: the keeper redials after it.
type counters struct {
	mu sync.Mutex
	c  struct {
		opened, closed                              int
		upgradesOut, upgradesIn, upgradeFailures    int
		simopens, elections, tieBreaks, ties        int
		dialFailures, keepaliveFailures, helloFails int
		duplicates                                  map[string]int
	}
}

func (k *counters) observe(e host.Event) {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := &k.c
	switch e := e.(type) {
	case host.ConnOpened:
		c.opened++
		if e.Election != nil {
			c.elections++
			if e.Election.TieBreak {
				c.tieBreaks++
			}
		}
	case host.ConnClosed:
		c.closed++
	case host.DuplicateResolved:
		if c.duplicates == nil {
			c.duplicates = map[string]int{}
		}
		c.duplicates[string(e.Rule)]++
	case host.BackoffScheduled:
		c.dialFailures++
	case host.KeepaliveFailed:
		c.keepaliveFailures++
	case host.HelloFailed:
		c.helloFails++
	case host.UpgradeEvent:
		switch u := e.Event.(type) {
		case upgrader.UpgradeStarted:
			if u.Direction == network.DirOutbound {
				c.upgradesOut++
			} else {
				c.upgradesIn++
			}
		case upgrader.UpgradeFinished:
			tie := errors.Is(u.Err, upgrader.ErrSimopenTie)
			if u.Err != nil {
				c.upgradeFailures++
			}
			if tie {
				c.ties++
			}
			if u.Direction == network.DirOutbound && (u.Election != nil || tie) {
				c.simopens++
			}
		}
	}
}

func (k *counters) reply() reply {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.c
	dups := map[string]int{}
	for r, n := range c.duplicates {
		dups[r] = n
	}
	return reply{
		"opened": c.opened, "closed": c.closed,
		"upgradesOut": c.upgradesOut, "upgradesIn": c.upgradesIn, "upgradeFailures": c.upgradeFailures,
		"simopens": c.simopens, "elections": c.elections, "tieBreaks": c.tieBreaks, "ties": c.ties,
		"duplicates": dups, "dialFailures": c.dialFailures,
		"keepaliveFailures": c.keepaliveFailures, "helloFailures": c.helloFails,
	}
}
