package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/peer"
)

var pingCommand = command{
	name:    "ping",
	args:    "ADDR",
	summary: "ping a peer with /ipfs/ping/1.0.0",
	help: `
Connects to ADDR (a multiaddr ending in /p2p/<peer ID>) and sends -count pings
of 32 random bytes, one every -interval, on one stream, printing each round
trip and then a summary. A failed ping is reported and the next one uses a new
stream. SIGINT stops early and still prints the summary.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		count := fs.Int("count", 4, "number of pings")
		interval := fs.Duration("interval", time.Second, "time between the starts of two pings")
		timeout := fs.Duration("timeout", ping.DefaultTimeout, "bound on each ping, and on connecting")
		rf := newRunFlags(fs, true)
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("ping", args, "ADDR"); err != nil {
				return err
			}
			if *count < 1 || *interval < 0 || *timeout <= 0 {
				return usageErrorf("ping: -count must be at least 1, -interval non-negative, -timeout positive")
			}
			ai, err := parsePeerAddr("ping", args[0])
			if err != nil {
				return err
			}
			s, err := rf.start(ctx, e, "ping", false)
			if err != nil {
				return err
			}
			defer s.stop()
			cfg, err := rf.hostConfig(e, "ping", s)
			if err != nil {
				return err
			}
			return runPing(ctx, e, ai, cfg, s, *count, *interval, *timeout)
		}
	},
}

func runPing(ctx context.Context, e *env, ai peer.AddrInfo, cfg host.Config, sess *session, count int, interval, timeout time.Duration) error {
	h, err := host.New(cfg)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer h.Close()
	if sess.metrics != nil {
		sess.metrics.Attach(h)
	}
	conn, err := connect(ctx, h, ai, timeout)
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	fmt.Fprintf(e.stdout, "PING %s via %s (%s, %s)\n", ai.ID, addrString(conn.RemoteMultiaddr()), conn.Security(), conn.Muxer())
	printIdentify(ctx, e, conn, timeout)

	var (
		s     *host.Stream
		stats ping.Stats
		sent  int
	)
	defer func() {
		if s != nil {
			_ = s.Close()
		}
	}()
	next := time.Now()
	for seq := 1; seq <= count && ctx.Err() == nil; seq++ {
		if seq > 1 {
			next = next.Add(interval)
			if !sleepUntil(ctx, next) {
				break
			}
		}
		sent++
		rtt, err := pingOnce(ctx, h, ai.ID, &s, sess.metrics, timeout)
		if err != nil {
			if ctx.Err() != nil {
				sent--
				break
			}
			fmt.Fprintf(e.stdout, "ping %d: %v\n", seq, err)
			continue
		}
		stats.Count++
		stats.Total += rtt
		if stats.Count == 1 || rtt < stats.Min {
			stats.Min = rtt
		}
		stats.Max = max(stats.Max, rtt)
		fmt.Fprintf(e.stdout, "ping %d: rtt %.3f ms\n", seq, millis(rtt))
	}
	lost := 0.0
	if sent > 0 {
		lost = 100 * float64(sent-stats.Count) / float64(sent)
	}
	fmt.Fprintf(e.stdout, "--- %d sent, %d answered, %.0f%% lost", sent, stats.Count, lost)
	if stats.Count > 0 {
		fmt.Fprintf(e.stdout, "; rtt min/avg/max %.3f/%.3f/%.3f ms", millis(stats.Min), millis(stats.Avg()), millis(stats.Max))
	}
	fmt.Fprintln(e.stdout)
	if stats.Count == 0 {
		if sent == 0 {
			return fmt.Errorf("ping: interrupted before any ping: %w", context.Cause(ctx))
		}
		return errors.New("ping: no ping was answered")
	}
	return nil
}

// printIdentify prints one line of what the peer's identify said, waiting
// for it at most timeout.
func printIdentify(ctx context.Context, e *env, c *host.Conn, timeout time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.Identified():
	case <-t.C:
	case <-ctx.Done():
	}
	info, err := c.Identify()
	if err != nil {
		fmt.Fprintf(e.stdout, "identify: %v\n", err)
		return
	}
	signed := "unsigned"
	if info.Record != nil {
		signed = "signed"
	}
	fmt.Fprintf(e.stdout, "identify: agent %q, %d protocols, %d listen addresses (%s)\n",
		info.AgentVersion, len(info.Protocols), len(info.ListenAddrs), signed)
}

// pingOnce pings on *s, opening a stream first if there is none, and drops
// the stream after a failure (its state is then unknown).
func pingOnce(ctx context.Context, h *host.Host, p peer.ID, s **host.Stream, m *metrics.Metrics, timeout time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if *s == nil {
		st, err := h.NewStream(ctx, p, ping.ID)
		if err != nil {
			return 0, fmt.Errorf("opening stream: %w", err)
		}
		*s = st
	}
	rtt, err := ping.Ping(ctx, m.CountStream(ping.ID, *s), nil)
	if err != nil {
		_ = (*s).Reset()
		*s = nil
	}
	return rtt, err
}

// connect dials ai, bounded by timeout. Its error is the host's
// *DialError, which names the peer, each address and its stage.
func connect(ctx context.Context, h *host.Host, ai peer.AddrInfo, timeout time.Duration) (*host.Conn, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("no connection within -timeout %v", timeout))
	defer cancel()
	return h.Connect(ctx, ai)
}

// sleepUntil waits until t or until ctx ends, reporting whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
