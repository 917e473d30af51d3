package main

import (
	"context"
	"flag"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host"
)

// defaultListenAddr is loopback on purpose: perf lets any client make the
// server send up to 1 GiB per stream, so exposing it is an explicit choice
// (-listen /ip4/0.0.0.0/tcp/4001).
const defaultListenAddr = "/ip4/127.0.0.1/tcp/4001"

var listenCommand = command{
	name:    "listen",
	summary: "serve ping, perf and echo until interrupted",
	help: `
Starts a host that serves /ipfs/ping/1.0.0, /perf/1.0.0 and /echo/1.0.0 and
prints its full addresses, /p2p/<peer ID> included, one per line on stdout
(an address on 0.0.0.0 or :: is printed once per interface address). It runs
until SIGINT or SIGTERM, then closes every connection and exits 0. Each
connection opening (peer, address, role, election, security, muxer), what
each peer's identify said (agent, protocols, listen addresses), each close
with its reason, each duplicate resolved and each inbound connection refused
is logged on stderr; -v adds every upgrade's steps.

The default address, ` + defaultListenAddr + `, accepts only local peers: perf
lets a client make the server send up to 1 GiB per stream, so serving it to
the network is a choice to make explicitly, e.g. -listen /ip4/0.0.0.0/tcp/4001.
Without -key the host has a fresh identity each time.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var listen multiaddrsFlag
		fs.Var(&listen, "listen", "`multiaddr` to listen on; repeatable (default "+defaultListenAddr+")")
		rf := newRunFlags(fs, true)
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("listen", args); err != nil {
				return err
			}
			if len(listen) == 0 {
				listen = multiaddrsFlag{ma.StringCast(defaultListenAddr)}
			}
			s, err := rf.start(ctx, e, "listen", true)
			if err != nil {
				return err
			}
			defer s.stop()
			cfg, err := rf.hostConfig(e, "listen", s)
			if err != nil {
				return err
			}
			cfg.ListenAddrs = listen
			return runListen(ctx, e, cfg, s)
		}
	},
}

func runListen(ctx context.Context, e *env, cfg host.Config, s *session) error {
	h, err := host.New(cfg)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	hctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel() // handlers first, then the host joins them
		_ = h.Close()
	}()
	if s.metrics != nil {
		s.metrics.Attach(h)
	}
	serveProtocols(hctx, h, s.metrics)
	addrs, err := p2pAddrs(h)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for _, a := range addrs {
		fmt.Fprintln(e.stdout, a)
	}
	<-ctx.Done()
	return nil
}
