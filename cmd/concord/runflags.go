package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

// runFlags are the flags of the commands that run a host, beside those
// that map onto host.Config: -key (the identity; not for demo, whose
// hosts are fresh each round), -v and -log-format (connection events on
// stderr through log/slog) and -metrics (a Prometheus endpoint).
type runFlags struct {
	cfg       *host.Config
	key       *string // nil: the command has no -key
	verbose   bool
	logFormat string
	metrics   string
}

func newRunFlags(fs *flag.FlagSet, withKey bool) *runFlags {
	f := &runFlags{cfg: configFlags(fs)}
	if withKey {
		f.key = fs.String("key", "", "key `file` of the host's identity (created if missing; its directory must exist); default: a fresh identity")
	}
	fs.BoolVar(&f.verbose, "v", false, "log connection events on stderr: dials, elections, security, muxer, duplicates, closes")
	fs.StringVar(&f.logFormat, "log-format", "text", "format of the -v logs: text or json")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics over HTTP on `ADDR` (host:port) at /metrics")
	return f
}

// session is what runFlags set up for one run: the logger, the metrics
// and the observer that feeds both.
type session struct {
	log     *slog.Logger
	metrics *metrics.Metrics
	stop    func()
}

// start checks the flags and sets up logging and metrics. events says
// which connection events are logged without -v (listen shows them;
// the clients keep stderr for errors). The caller must call stop.
func (f *runFlags) start(ctx context.Context, e *env, cmd string, events bool) (*session, error) {
	var h slog.Handler
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "text":
		h = slog.NewTextHandler(e.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(e.stderr, opts)
	default:
		return nil, usageErrorf("%s: -log-format %q: want text or json", cmd, f.logFormat)
	}
	notice := slog.New(h) // said even without -v: where the metrics are
	if !f.verbose && !events {
		h = slog.DiscardHandler
	}
	s := &session{log: slog.New(h), stop: func() {}}
	if f.metrics != "" {
		m := metrics.New()
		addr, stop, err := m.Serve(ctx, f.metrics)
		if err != nil {
			return nil, fmt.Errorf("%s: -metrics: %w", cmd, err)
		}
		s.metrics, s.stop = m, stop
		notice.Info("serving metrics", "url", "http://"+addr.String()+"/metrics")
	}
	return s, nil
}

// observer returns the host observer that logs and counts events; name,
// if not empty, labels the log lines (demo's hosts a and b).
func (s *session) observer(name string) func(host.Event) {
	log := s.log
	if name != "" {
		log = log.With("host", name)
	}
	return func(ev host.Event) {
		logEvent(log, ev)
		if s.metrics != nil {
			s.metrics.Observe(ev)
		}
	}
}

// hostConfig is the host.Config of the flags with the identity of -key
// and the session's observer.
func (f *runFlags) hostConfig(e *env, cmd string, s *session) (host.Config, error) {
	cfg := *f.cfg
	if f.key != nil && *f.key != "" {
		k, created, err := loadOrCreateKey(*f.key, false)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", cmd, err)
		}
		if created {
			fmt.Fprintf(e.stderr, "created %s\n", *f.key)
		}
		cfg.Identity = k
	}
	cfg.Observer = s.observer("")
	return cfg, nil
}

// logEvent writes one host event as a log line. Connections opening and
// closing, identify results, duplicates and refusals are Info; the steps
// of each upgrade are Debug (-v).
func logEvent(log *slog.Logger, ev host.Event) {
	ctx := context.Background()
	switch e := ev.(type) {
	case host.UpgradeEvent:
		switch u := e.Event.(type) {
		case upgrader.UpgradeStarted:
			if u.Direction == network.DirOutbound {
				log.DebugContext(ctx, "dialing", "remote", u.Remote, "local", u.Local, "peer", short(u.ExpectedPeer))
			} else {
				log.DebugContext(ctx, "accepting", "remote", u.Remote, "local", u.Local)
			}
		case upgrader.UpgradeFinished:
			attrs := []any{"direction", u.Direction.String(), "remote", u.Remote, "peer", short(u.Peer)}
			if u.Err != nil {
				log.InfoContext(ctx, "upgrade failed", append(attrs, "err", u.Err, "after", u.Total)...)
				return
			}
			if el := u.Election; el != nil {
				attrs = append(attrs, "election", fmt.Sprintf("%d vs %d", el.Local, el.Remote), "tie_break", el.TieBreak)
			}
			log.DebugContext(ctx, "upgraded", append(attrs, "role", u.Role.String(), "security", u.Security, "muxer", u.Muxer,
				"inlined", u.MuxerInlined, "simopen", u.Durations.Simopen, "handshake", u.Durations.Security,
				"muxer_negotiation", u.Durations.Muxer, "total", u.Total)...)
		case upgrader.InboundRefused:
			log.InfoContext(ctx, "inbound refused", "remote", u.Remote, "reason", u.Reason)
		}
	case host.ConnOpened:
		attrs := []any{"peer", short(e.Peer), "seq", e.Seq, "direction", e.Direction.String(), "role", e.Role.String(),
			"security", e.Security, "muxer", e.Muxer, "inlined", e.MuxerInlined, "remote", e.Remote}
		if el := e.Election; el != nil {
			attrs = append(attrs, "election", fmt.Sprintf("%d vs %d", el.Local, el.Remote), "tie_break", el.TieBreak)
		}
		log.InfoContext(ctx, "connection opened", attrs...)
	case host.ConnClosed:
		log.InfoContext(ctx, "connection closed", "peer", short(e.Peer), "seq", e.Seq, "reason", e.Reason, "lifetime", e.Lifetime)
	case host.PeerIdentified:
		msg := "peer identified"
		if e.Push {
			msg = "identify push"
		}
		log.InfoContext(ctx, msg, "peer", short(e.Peer), "seq", e.Seq, "agent", e.Info.AgentVersion,
			"protocol_version", e.Info.ProtocolVersion, "protocol_count", len(e.Info.Protocols),
			"protocols", e.Info.Protocols, "listen_addrs", addrStrings(e.Info.ListenAddrs),
			"observed_addr", maString(e.Info.ObservedAddr), "signed_record", e.Info.Record != nil)
	case host.IdentifyFailed:
		log.InfoContext(ctx, "identify failed", "peer", short(e.Peer), "seq", e.Seq, "err", e.Err)
	case host.DuplicateResolved:
		log.InfoContext(ctx, "duplicate resolved", "peer", short(e.Peer), "rule", string(e.Rule),
			"kept_seq", e.SurvivorSeq, "closed_seq", e.ClosedSeq, "immediate", e.Immediate)
	case host.KeepaliveFailed:
		log.InfoContext(ctx, "keepalive failed", "peer", short(e.Peer), "seq", e.Seq, "lifetime", e.Lifetime)
	case host.HelloFailed:
		log.InfoContext(ctx, "hello failed", "peer", short(e.Peer), "seq", e.Seq, "sending", e.Sending,
			"after", e.Elapsed, "err", e.Err)
	case host.BackoffScheduled:
		log.InfoContext(ctx, "dial failed", "peer", short(e.Peer), "addr", e.Addr, "failures", e.Failures,
			"retry_after", e.Until.Format("15:04:05.000"), "err", e.Err)
	}
}

// addrStrings is addrs in text, for a log attribute that reads the same in
// text and JSON.
func addrStrings(addrs []ma.Multiaddr) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = maString(a)
	}
	return out
}

// maString is a's text, "" for nil.
func maString(a ma.Multiaddr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func short(id peer.ID) string {
	if id == "" {
		return ""
	}
	return id.ShortString()
}
