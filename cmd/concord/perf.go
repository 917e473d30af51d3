package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/peer"
)

var perfCommand = command{
	name:    "perf",
	args:    "ADDR",
	summary: "measure throughput to a peer with /perf/1.0.0",
	help: `
Connects to ADDR (a multiaddr ending in /p2p/<peer ID>), uploads
-upload-bytes, then downloads -download-bytes, per the libp2p perf protocol,
and prints the time and throughput of each direction.

On a terminal a progress line is redrawn in place while the transfer runs.
With -json the output is the libp2p test-plans perf runner's: an
"intermediary" JSON line each second with that second's bytes and time, then
a "final" line whose time includes connecting to the peer.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var o perfOptions
		fs.Uint64Var(&o.upload, "upload-bytes", 10<<20, "bytes to upload")
		fs.Uint64Var(&o.download, "download-bytes", 10<<20, "bytes to download")
		fs.BoolVar(&o.json, "json", false, "print the perf runner's JSON lines")
		fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound on connecting")
		rf := newRunFlags(fs, true)
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("perf", args, "ADDR"); err != nil {
				return err
			}
			if o.timeout <= 0 {
				return usageErrorf("perf: -timeout must be positive")
			}
			ai, err := parsePeerAddr("perf", args[0])
			if err != nil {
				return err
			}
			s, err := rf.start(ctx, e, "perf", false)
			if err != nil {
				return err
			}
			defer s.stop()
			cfg, err := rf.hostConfig(e, "perf", s)
			if err != nil {
				return err
			}
			o.host, o.session = &cfg, s
			return runPerf(ctx, e, ai, o)
		}
	},
}

type perfOptions struct {
	upload, download uint64
	json             bool
	timeout          time.Duration
	host             *host.Config // from the flags
	session          *session
}

func runPerf(ctx context.Context, e *env, ai peer.AddrInfo, o perfOptions) error {
	h, err := host.New(*o.host)
	if err != nil {
		return fmt.Errorf("perf: %w", err)
	}
	defer h.Close()
	if o.session.metrics != nil {
		o.session.metrics.Attach(h)
	}
	start := time.Now()
	if _, err := connect(ctx, h, ai, o.timeout); err != nil {
		return fmt.Errorf("perf: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, o.timeout)
	s, err := h.NewStream(sctx, ai.ID, perf.ID)
	cancel()
	if err != nil {
		return fmt.Errorf("perf: opening stream: %w", err)
	}
	defer s.Close()
	setup := time.Since(start)

	client := perf.Client{}
	progress := func(p perf.Progress) {}
	live := false
	switch {
	case o.json:
		progress = func(p perf.Progress) {
			if line, err := perf.JSONLine(p); err == nil {
				_, _ = e.stdout.Write(line)
			}
		}
	case e.terminal:
		live = true
		client.ProgressInterval = 200 * time.Millisecond
		progress = func(p perf.Progress) {
			fmt.Fprintf(e.stdout, "\r%-78s", progressLine(p))
		}
	}
	res, err := client.Run(ctx, o.session.metrics.CountStream(perf.ID, s), o.upload, o.download, progress)
	if live {
		fmt.Fprintf(e.stdout, "\r%78s\r", "")
	}
	if err != nil {
		return fmt.Errorf("perf: after %d bytes up, %d down: %w", res.Uploaded, res.Downloaded, err)
	}
	if o.json {
		res.Total += setup
		line, err := perf.JSONLine(res)
		if err != nil {
			return fmt.Errorf("perf: %w", err)
		}
		_, err = e.stdout.Write(line)
		return err
	}
	fmt.Fprintf(e.stdout, "upload    %s in %s  %s\n", bytesString(res.Uploaded), durString(res.Upload), rate(res.Uploaded, res.Upload))
	fmt.Fprintf(e.stdout, "download  %s in %s  %s\n", bytesString(res.Downloaded), durString(res.Download), rate(res.Downloaded, res.Download))
	fmt.Fprintf(e.stdout, "total     %s, plus %s to connect and open the stream\n", durString(res.Total), durString(setup))
	return nil
}

func progressLine(p perf.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%5.1fs  up %s  down %s", p.Elapsed.Seconds(), bytesString(p.Uploaded), bytesString(p.Downloaded))
	if p.Interval > 0 {
		fmt.Fprintf(&b, "  now %s", rate(p.IntervalUploaded+p.IntervalDownloaded, p.Interval))
	}
	return b.String()
}

func bytesString(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func durString(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1f ms", millis(d))
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func rate(n uint64, d time.Duration) string {
	if d <= 0 || n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f MB/s", float64(n)/d.Seconds()/1e6)
}
