package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"regexp"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/conformance"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
)

// errCasesFailed is the exit-1 error when the run went through and some
// case failed.
var errCasesFailed = errors.New("conformance: a case failed")

var conformanceCommand = command{
	name:    "conformance",
	args:    "[MULTIADDR]",
	summary: "run the spec conformance suite against a libp2p peer",
	help: `
Plays every case of the conformance suite (package conformance; the rules are
in spec/*.md) against the peer at MULTIADDR, over real TCP, and prints one row
per case: its id, the spec rule, the mode, pass, fail or n/a, what the rule
expects and what was observed. With -json the rows are one JSON array.

Dial cases connect to MULTIADDR, which should end in /p2p/<peer ID> (the
cases that check the peer ID are otherwise not applicable). Listen cases
(simultaneous-open elections, the dialer's checks) need -listen ADDR: the
runner listens there, prints on stderr the multiaddr to dial, and waits for
the target to dial it once per case (for a target that only dials, run it in
a loop). -key makes that multiaddr stable; -peer names a dialing target's
peer ID when MULTIADDR is not given. A case whose mode has no target is n/a.

Exits 1 when any case fails.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		asJSON := fs.Bool("json", false, "print the results as JSON")
		only := fs.String("run", "", "run only the cases whose id matches `REGEXP`")
		listen := fs.String("listen", "", "listen on `MULTIADDR` (/ip4/.../tcp/...) for the listen cases")
		peerID := fs.String("peer", "", "the target's peer `ID` (default: MULTIADDR's /p2p/ part)")
		key := fs.String("key", "", "key `file` of the runner's identity (created if missing); default: a fresh identity")
		answer := fs.Duration("answer-timeout", conformance.DefaultAnswerTimeout, "bound on each wait for an answer")
		stage := fs.Duration("stage-timeout", conformance.DefaultStageTimeout, "how long the target may take to drop a stalled handshake")
		return func(ctx context.Context, e *env, args []string) error {
			if len(args) > 1 {
				return usageErrorf("conformance: want at most one MULTIADDR, got %d arguments", len(args))
			}
			if len(args) == 0 && *listen == "" {
				return usageErrorf("conformance: want MULTIADDR, or -listen for a target that dials")
			}
			if *answer <= 0 || *stage <= 0 {
				return usageErrorf("conformance: -answer-timeout and -stage-timeout must be positive")
			}
			r := conformance.Runner{AnswerTimeout: *answer, StageTimeout: *stage}
			if *only != "" {
				re, err := regexp.Compile(*only)
				if err != nil {
					return usageErrorf("conformance: -run %q: %v", *only, err)
				}
				if !matchesCase(re) {
					return usageErrorf("conformance: -run %q matches no case", *only)
				}
				r.Only = re
			}
			if len(args) == 1 {
				m, err := ma.NewMultiaddr(args[0])
				if err != nil {
					return usageErrorf("conformance: bad MULTIADDR %q: %s", args[0], errorAfter(err, args[0]))
				}
				addr, _ := ma.SplitFunc(m, func(c ma.Component) bool { return c.Protocol().Code == ma.P_P2P })
				if _, _, err := tcp.ToTCPAddr(addr); err != nil {
					return usageErrorf("conformance: MULTIADDR %q: want /ip4/.../tcp/... or /ip6/.../tcp/..., optionally with /p2p/<peer ID>", args[0])
				}
				r.Target = m
			}
			if *peerID != "" {
				id, err := peer.Decode(*peerID)
				if err != nil {
					return usageErrorf("conformance: -peer %q: %s", *peerID, errorAfter(err, *peerID))
				}
				r.TargetID = id
			}
			if *key != "" {
				k, created, err := loadOrCreateKey(*key, false)
				if err != nil {
					return fmt.Errorf("conformance: %w", err)
				}
				if created {
					fmt.Fprintf(e.stderr, "created %s\n", *key)
				}
				r.Identity = k
			} else {
				k, err := peer.GenerateKey(peer.Ed25519, nil)
				if err != nil {
					return fmt.Errorf("conformance: %w", err)
				}
				r.Identity = k
			}
			if *listen != "" {
				m, err := ma.NewMultiaddr(*listen)
				if err != nil {
					return usageErrorf("conformance: -listen %q: %s", *listen, errorAfter(err, *listen))
				}
				ta, _, err := tcp.ToTCPAddr(m)
				if err != nil {
					return usageErrorf("conformance: -listen %q: want /ip4/.../tcp/PORT or /ip6/.../tcp/PORT", *listen)
				}
				ln, err := net.ListenTCP("tcp", ta)
				if err != nil {
					return fmt.Errorf("conformance: %w", err)
				}
				defer ln.Close()
				r.Listener = ln
				a, err := conformance.ListenAddr(ln, r.Identity)
				if err != nil {
					return fmt.Errorf("conformance: %w", err)
				}
				fmt.Fprintf(e.stderr, "listen cases: dial %s once per case\n", a)
			}
			return runConformance(ctx, e, &r, *asJSON)
		}
	},
}

func runConformance(ctx context.Context, e *env, r *conformance.Runner, asJSON bool) error {
	results, err := r.Run(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		err = conformance.WriteJSON(e.stdout, results)
	} else {
		err = conformance.WriteTable(e.stdout, results)
	}
	if err != nil {
		return err
	}
	for _, res := range results {
		if res.Outcome == conformance.Fail {
			return errCasesFailed
		}
	}
	return ctx.Err()
}

func matchesCase(re *regexp.Regexp) bool {
	cases, err := conformance.Builtin()
	if err != nil {
		return true // Run reports it
	}
	for _, c := range cases {
		if re.MatchString(c.ID) {
			return true
		}
	}
	return false
}
