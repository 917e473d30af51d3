package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/cmd/concord/internal/metrics"
	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/host/ping"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/upgrader"
)

var demoCommand = command{
	name:    "demo",
	summary: "two peers on loopback dial each other at once, round after round",
	help: `
Runs two Concord hosts on 127.0.0.1 (port reuse on, so each dials from its
listening port) and makes them Connect to each other at the same instant, round
after round. Each round prints what TCP produced (one simultaneous-open
connection, both ends outbound, or two crossing connections), the simultaneous-
open election (both numbers, who became initiator, whether the peer-ID
tie-break decided), the security and muxer agreed, how the duplicate was
resolved, a ping round trip and a short download throughput; then a summary.

Every round uses two fresh hosts with fresh keys, so rounds are independent:
no TIME_WAIT socket, backoff state or draining connection of one round can
decide the next, and the peer-ID order (which the duplicate rule uses) varies.

A round succeeds when, within -wait, each host holds exactly one connection to
the other, not draining, and it is the same connection (each host's sequence
number for it is the one the other's hello announced).`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var o demoOptions
		fs.IntVar(&o.rounds, "rounds", 10, "number of rounds")
		fs.Uint64Var(&o.perfBytes, "perf-bytes", 4<<20, "bytes to download in each round's perf run (0: no perf)")
		fs.DurationVar(&o.wait, "wait", time.Second, "how long a round may take to converge on one connection")
		fs.BoolVar(&o.json, "json", false, "print one JSON object per round, then one with the summary")
		rf := newRunFlags(fs, false)
		o.host = rf.cfg
		return func(ctx context.Context, e *env, args []string) error {
			if err := exactArgs("demo", args); err != nil {
				return err
			}
			if o.rounds < 1 {
				return usageErrorf("demo: -rounds must be at least 1")
			}
			if o.wait <= 0 {
				return usageErrorf("demo: -wait must be positive")
			}
			s, err := rf.start(ctx, e, "demo", false)
			if err != nil {
				return err
			}
			defer s.stop()
			o.session = s
			return runDemo(ctx, e, o)
		}
	},
}

type demoOptions struct {
	rounds    int
	perfBytes uint64
	wait      time.Duration
	json      bool
	host      *host.Config // from the flags that map onto it; nil: defaults
	session   *session     // logs and metrics; nil: none
	// tweak, if not nil, adjusts both hosts' configuration (tests only).
	tweak func(*host.Config)
}

// Outcomes of a round's TCP dials.
const (
	outcomeSimopen  = "simultaneous open" // one TCP connection, both ends outbound
	outcomeCrossing = "crossing dials"    // each dial made its own connection
	outcomeSingle   = "single dial"       // one Connect found the other's connection
	outcomeOther    = "other"
)

// connInfo describes a connection that joined a host's table in a round.
type connInfo struct {
	Seq       uint64 `json:"seq"`
	Direction string `json:"direction"`
	Role      string `json:"role"`
	Local     string `json:"local"`
	Remote    string `json:"remote"`
}

type electionInfo struct {
	A        uint64 `json:"a"`
	B        uint64 `json:"b"`
	Winner   string `json:"initiator"` // "a" or "b"
	TieBreak bool   `json:"tieBreak"`
}

type resolutionInfo struct {
	Side        string `json:"side"` // the host that closed a connection
	Rule        string `json:"rule"`
	SurvivorSeq uint64 `json:"survivorSeq"`
	ClosedSeq   uint64 `json:"closedSeq"`
	Immediate   bool   `json:"immediate"`
}

// closedInfo is a connection that left a host's table during the round.
type closedInfo struct {
	Side   string `json:"side"`
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason"`
}

// roundResult is what a round printed, and its JSON form.
type roundResult struct {
	Round        int              `json:"round"`
	PeerA        string           `json:"peerA"`
	PeerB        string           `json:"peerB"`
	ListenA      string           `json:"listenA"`
	ListenB      string           `json:"listenB"`
	Outcome      string           `json:"outcome"`
	ConnsA       []connInfo       `json:"connsA"`
	ConnsB       []connInfo       `json:"connsB"`
	Election     *electionInfo    `json:"election"`
	Security     string           `json:"security,omitempty"`
	Muxer        string           `json:"muxer,omitempty"`
	MuxerInlined bool             `json:"muxerInlined"`
	Resolutions  []resolutionInfo `json:"resolutions"`
	Closed       []closedInfo     `json:"closed"`
	Failed       []string         `json:"failed"` // failed upgrades and dials
	SurvivorA    uint64           `json:"survivorSeqA,omitempty"`
	SurvivorB    uint64           `json:"survivorSeqB,omitempty"`
	SurvivorPath string           `json:"survivor,omitempty"`
	ConnectMs    float64          `json:"connectMillis"`
	ConvergeMs   float64          `json:"convergeMillis"`
	PingMs       float64          `json:"pingMillis,omitempty"`
	PerfMBps     float64          `json:"perfMBps,omitempty"`
	OK           bool             `json:"ok"`
	Error        string           `json:"error,omitempty"`
}

type demoSummary struct {
	Rounds        int            `json:"rounds"`
	OK            int            `json:"ok"`
	Failed        int            `json:"failed"`
	Outcomes      map[string]int `json:"outcomes"`
	Elections     int            `json:"elections"`
	WonByA        int            `json:"initiatorA"`
	WonByB        int            `json:"initiatorB"`
	TieBreaks     int            `json:"tieBreaks"`
	Resolutions   map[string]int `json:"resolutions"` // decisions by rule, both hosts counted
	Duplicates    int            `json:"roundsWithDuplicate"`
	MedianPingMs  float64        `json:"medianPingMillis"`
	MedianPerfMBs float64        `json:"medianPerfMBps"`
	PerfBytes     uint64         `json:"perfBytes"`
}

// eventLog collects a host's events; the host calls observe synchronously.
type eventLog struct {
	mu     sync.Mutex
	events []host.Event
}

func (l *eventLog) observe(e host.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *eventLog) snapshot() []host.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

func runDemo(ctx context.Context, e *env, o demoOptions) error {
	var results []roundResult
	enc := json.NewEncoder(e.stdout)
	for i := 1; i <= o.rounds; i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("demo: interrupted after %d rounds: %w", i-1, context.Cause(ctx))
		}
		r, err := demoRound(ctx, o, i)
		if ctx.Err() != nil {
			// An interrupted round did not fail: it was cut short.
			return fmt.Errorf("demo: interrupted in round %d: %w", i, context.Cause(ctx))
		}
		if err != nil {
			return fmt.Errorf("demo: round %d: %w", i, err)
		}
		results = append(results, r)
		if o.json {
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("demo: writing output: %w", err)
			}
		} else {
			printRound(e.stdout, r)
		}
	}
	s := summarize(results, o.perfBytes)
	if o.json {
		if err := enc.Encode(struct {
			Summary demoSummary `json:"summary"`
		}{s}); err != nil {
			return fmt.Errorf("demo: writing output: %w", err)
		}
	} else {
		printSummary(e.stdout, s)
	}
	if s.Failed > 0 {
		return fmt.Errorf("demo: %d of %d rounds did not end with exactly one live connection on both ends", s.Failed, s.Rounds)
	}
	return nil
}

// demoRound runs one round with two fresh hosts. An error means the round
// could not be run at all (a host could not start); a round that ran but
// failed is reported in the result.
func demoRound(ctx context.Context, o demoOptions, round int) (r roundResult, err error) {
	r.Round = round
	hctx, cancel := context.WithCancel(ctx)
	defer cancel() // before the hosts close: handlers end first
	var logA, logB eventLog
	newHost := func(l *eventLog, name string) (*host.Host, error) {
		var cfg host.Config
		if o.host != nil {
			cfg = *o.host
		}
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/0")}
		cfg.Observer = l.observe
		if o.session != nil {
			also := o.session.observer(fmt.Sprintf("%s%d", name, round))
			cfg.Observer = func(e host.Event) {
				l.observe(e)
				also(e)
			}
		}
		if o.tweak != nil {
			o.tweak(&cfg)
		}
		return host.New(cfg)
	}
	a, err := newHost(&logA, "a")
	if err != nil {
		return r, fmt.Errorf("starting host a: %w", err)
	}
	defer a.Close()
	b, err := newHost(&logB, "b")
	if err != nil {
		return r, fmt.Errorf("starting host b: %w", err)
	}
	defer b.Close()
	var m *metrics.Metrics
	if o.session != nil {
		m = o.session.metrics
	}
	serveProtocols(hctx, a, m)
	serveProtocols(hctx, b, m)
	r.PeerA, r.PeerB = a.ID().String(), b.ID().String()
	r.ListenA, r.ListenB = addrString(a.Addrs()[0]), addrString(b.Addrs()[0])

	// Both Connects leave the barrier together.
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, pair := range [][2]*host.Host{{a, b}, {b, a}} {
		wg.Go(func() {
			<-start
			_, errs[i] = pair[0].Connect(dctx, pair[1].AddrInfo())
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	r.ConnectMs = millis(time.Since(t0))
	dialErr := errors.Join(errs...)

	convErr := dialErr
	if convErr == nil {
		convErr = converge(ctx, a, b, o.wait)
		r.ConvergeMs = millis(time.Since(t0))
	}
	if convErr == nil {
		convErr = measure(ctx, a, b, o.perfBytes, &r)
	}
	describe(&r, a, b, logA.snapshot(), logB.snapshot())
	r.OK = convErr == nil
	if convErr != nil {
		r.Error = convErr.Error()
	}
	return r, nil
}

// converge waits up to wait until a and b hold exactly one connection to
// each other, live and the same: a's sequence number for it is the one b's
// hello reported, and the other way round.
func converge(ctx context.Context, a, b *host.Host, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		why := convergedWhyNot(a, b)
		if why == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not converged within %v: %s", wait, why)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}

func convergedWhyNot(a, b *host.Host) string {
	ca, cb := a.Conns(b.ID()), b.Conns(a.ID())
	if len(ca) != 1 || len(cb) != 1 {
		return fmt.Sprintf("a holds %d connections to b, b holds %d to a", len(ca), len(cb))
	}
	incA, seqFromB, okA := ca[0].RemoteHello()
	incB, seqFromA, okB := cb[0].RemoteHello()
	switch {
	case !okA || !okB:
		return "hello not exchanged yet"
	case incA != b.Incarnation() || incB != a.Incarnation():
		return "a hello names another incarnation"
	case seqFromA != ca[0].Seq() || seqFromB != cb[0].Seq():
		return fmt.Sprintf("different connections: a kept #%d (b says a's is #%d), b kept #%d (a says b's is #%d)",
			ca[0].Seq(), seqFromA, cb[0].Seq(), seqFromB)
	case ca[0].Draining() || cb[0].Draining():
		return "the connection is draining"
	case ca[0].IsClosed() || cb[0].IsClosed():
		return "the connection is closed"
	}
	return ""
}

// measure pings b from a and downloads perfBytes from b.
func measure(ctx context.Context, a, b *host.Host, perfBytes uint64, r *roundResult) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := a.NewStream(ctx, b.ID(), ping.ID)
	if err != nil {
		return fmt.Errorf("opening ping stream: %w", err)
	}
	rtt, err := ping.Ping(ctx, s, nil)
	_ = s.Close()
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	r.PingMs = millis(rtt)
	if perfBytes == 0 {
		return nil
	}
	s, err = a.NewStream(ctx, b.ID(), perf.ID)
	if err != nil {
		return fmt.Errorf("opening perf stream: %w", err)
	}
	res, err := perf.Run(ctx, s, 0, perfBytes, nil)
	_ = s.Close()
	if err != nil {
		return fmt.Errorf("perf: %w", err)
	}
	if res.Download > 0 {
		r.PerfMBps = float64(res.Downloaded) / res.Download.Seconds() / 1e6
	}
	return nil
}

// describe fills in what the round's events and surviving connections say.
func describe(r *roundResult, a, b *host.Host, evA, evB []host.Event) {
	r.ConnsA, r.ConnsB = opened(evA), opened(evB)
	r.Resolutions = append(resolutions("a", evA), resolutions("b", evB)...)
	r.Closed = append(closed("a", evA), closed("b", evB)...)
	r.Failed = append(failures("a", evA), failures("b", evB)...)
	na, nb := len(r.ConnsA), len(r.ConnsB)
	switch {
	case na == 1 && nb == 1 && r.ConnsA[0].Direction == network.DirOutbound.String() && r.ConnsB[0].Direction == network.DirOutbound.String():
		r.Outcome = outcomeSimopen
	case na == 1 && nb == 1:
		r.Outcome = outcomeSingle
	case na == 2 && nb == 2:
		r.Outcome = outcomeCrossing
	default:
		r.Outcome = fmt.Sprintf("%s (%d connections on a, %d on b)", outcomeOther, na, nb)
	}
	ca, cb := a.Conns(b.ID()), b.Conns(a.ID())
	if len(ca) != 1 || len(cb) != 1 {
		return
	}
	sa := ca[0]
	r.SurvivorA, r.SurvivorB = sa.Seq(), cb[0].Seq()
	r.Security, r.Muxer, r.MuxerInlined = sa.Security(), sa.Muxer(), sa.MuxerInlined()
	switch {
	case sa.Direction() == network.DirOutbound && cb[0].Direction() == network.DirOutbound:
		r.SurvivorPath = "a⇄b"
	case sa.Direction() == network.DirOutbound:
		r.SurvivorPath = "a→b"
	default:
		r.SurvivorPath = "b→a"
	}
	if el := sa.Election(); el != nil {
		r.Election = &electionInfo{A: el.Local, B: el.Remote, TieBreak: el.TieBreak, Winner: "b"}
		if sa.Role() == network.RoleInitiator {
			r.Election.Winner = "a"
		}
	}
}

func opened(evs []host.Event) []connInfo {
	var out []connInfo
	for _, ev := range evs {
		if o, ok := ev.(host.ConnOpened); ok {
			out = append(out, connInfo{Seq: o.Seq, Direction: o.Direction.String(), Role: o.Role.String(),
				Local: addrString(o.Local), Remote: addrString(o.Remote)})
		}
	}
	return out
}

func closed(side string, evs []host.Event) []closedInfo {
	var out []closedInfo
	for _, ev := range evs {
		if c, ok := ev.(host.ConnClosed); ok {
			reason := "no reason given"
			if c.Reason != nil {
				reason = c.Reason.Error()
			}
			out = append(out, closedInfo{Side: side, Seq: c.Seq, Reason: reason})
		}
	}
	return out
}

// failures lists the upgrades that failed and the dials that scheduled a
// backoff: a round with one connection may have had a second attempt.
func failures(side string, evs []host.Event) []string {
	var out []string
	for _, ev := range evs {
		switch e := ev.(type) {
		case host.UpgradeEvent:
			if f, ok := e.Event.(upgrader.UpgradeFinished); ok && f.Err != nil {
				out = append(out, fmt.Sprintf("%s's %s upgrade %s → %s: %v", side, f.Direction, addrString(f.Local), addrString(f.Remote), f.Err))
			}
		case host.BackoffScheduled:
			out = append(out, fmt.Sprintf("%s's dial to %s failed (%d in a row): %v", side, addrString(e.Addr), e.Failures, e.Err))
		}
	}
	return out
}

func resolutions(side string, evs []host.Event) []resolutionInfo {
	var out []resolutionInfo
	for _, ev := range evs {
		if d, ok := ev.(host.DuplicateResolved); ok {
			out = append(out, resolutionInfo{Side: side, Rule: string(d.Rule), SurvivorSeq: d.SurvivorSeq,
				ClosedSeq: d.ClosedSeq, Immediate: d.Immediate})
		}
	}
	return out
}

// addrString shortens /ip4/127.0.0.1/tcp/4001 to 127.0.0.1:4001.
func addrString(m ma.Multiaddr) string {
	if m == nil {
		return ""
	}
	if ip, port, _, ok := ipPort(m); ok {
		if ip.To4() != nil {
			return ip.String() + ":" + port
		}
		return "[" + ip.String() + "]:" + port
	}
	return m.String()
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printRound(w io.Writer, r roundResult) {
	const indent = "          "
	status := "ok"
	if !r.OK {
		status = "FAILED: " + r.Error
	}
	fmt.Fprintf(w, "round %-3d %s\n", r.Round, tcpLine(r))
	if r.Outcome != outcomeSimopen {
		for _, c := range r.ConnsA {
			fmt.Fprintf(w, "%s%s\n", indent, pathOf(r, c))
		}
	}
	switch {
	case r.Election != nil:
		tb := "no"
		if r.Election.TieBreak {
			tb = "yes (equal numbers, peer-ID order decided)"
		}
		fmt.Fprintf(w, "%selection  a sent %d, b sent %d: %s is initiator; tie-break %s\n",
			indent, r.Election.A, r.Election.B, r.Election.Winner, tb)
	case r.Outcome == outcomeSimopen:
		fmt.Fprintf(w, "%selection  none recorded on the surviving connection\n", indent)
	default:
		fmt.Fprintf(w, "%selection  none: every connection had one dialer and one listener\n", indent)
	}
	if r.Security != "" {
		inl := "negotiated with multistream-select"
		if r.MuxerInlined {
			inl = "inlined in the security handshake"
		}
		fmt.Fprintf(w, "%supgrade   %s, %s (%s)\n", indent, r.Security, r.Muxer, inl)
	}
	if len(r.Resolutions) == 0 {
		fmt.Fprintf(w, "%sresolved  nothing to resolve\n", indent)
	}
	for i, d := range r.Resolutions {
		label := "resolved "
		if i > 0 {
			label = "         "
		}
		how := "drains its streams first"
		if d.Immediate {
			how = "closed at once"
		}
		fmt.Fprintf(w, "%s%s %s by rule %q: kept #%d, closed #%d (%s)\n", indent, label, d.Side, d.Rule, d.SurvivorSeq, d.ClosedSeq, how)
	}
	// Closures that no resolution of the same side explains: the peer
	// closed the loser, for instance.
	for _, c := range r.Closed {
		explained := false
		for _, d := range r.Resolutions {
			explained = explained || (d.Side == c.Side && d.ClosedSeq == c.Seq)
		}
		if !explained {
			fmt.Fprintf(w, "%sclosed    %s's #%d: %s\n", indent, c.Side, c.Seq, c.Reason)
		}
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "%sfailed    %s\n", indent, f)
	}
	if r.SurvivorPath != "" {
		fmt.Fprintf(w, "%ssurvivor  %s, a's #%d = b's #%d; converged %.1f ms after the dials started\n",
			indent, r.SurvivorPath, r.SurvivorA, r.SurvivorB, r.ConvergeMs)
	}
	perfStr := "-"
	if r.PerfMBps > 0 {
		perfStr = fmt.Sprintf("%.0f MB/s down", r.PerfMBps)
	}
	pingStr := "-"
	if r.PingMs > 0 {
		pingStr = fmt.Sprintf("%.3f ms", r.PingMs)
	}
	fmt.Fprintf(w, "%sping      %s   perf %s   %s\n", indent, pingStr, perfStr, status)
}

// tcpLine says what TCP produced in a round.
func tcpLine(r roundResult) string {
	switch r.Outcome {
	case outcomeSimopen:
		return fmt.Sprintf("%s: one TCP connection, outbound on both ends, %s ⇄ %s", r.Outcome, r.ConnsA[0].Local, r.ConnsA[0].Remote)
	case outcomeCrossing:
		return r.Outcome + ": two TCP connections, one had to go"
	case outcomeSingle:
		return r.Outcome + ": one TCP connection; the other Connect returned it"
	}
	return r.Outcome
}

// pathOf describes one of a's connections: who dialed, between which
// ports, and whether the dialer used its listening port (port reuse) or fell
// back to an ephemeral one.
func pathOf(r roundResult, c connInfo) string {
	from, to, dialer, listen := c.Local, c.Remote, "a", r.ListenA
	if c.Direction != network.DirOutbound.String() {
		from, to, dialer, listen = c.Remote, c.Local, "b", r.ListenB
	}
	how := "from its listening port"
	if from != listen {
		how = "from an ephemeral port: the listening port's 4-tuple was taken"
	}
	return fmt.Sprintf("%s→%s       %s → %s (%s)", dialer, otherSide(dialer), from, to, how)
}

func otherSide(s string) string {
	if s == "a" {
		return "b"
	}
	return "a"
}

func summarize(rs []roundResult, perfBytes uint64) demoSummary {
	s := demoSummary{Rounds: len(rs), Outcomes: map[string]int{}, Resolutions: map[string]int{}, PerfBytes: perfBytes}
	var pings, perfs []float64
	for _, r := range rs {
		if r.OK {
			s.OK++
		} else {
			s.Failed++
		}
		s.Outcomes[r.Outcome]++
		if r.Election != nil {
			s.Elections++
			if r.Election.Winner == "a" {
				s.WonByA++
			} else {
				s.WonByB++
			}
			if r.Election.TieBreak {
				s.TieBreaks++
			}
		}
		for _, d := range r.Resolutions {
			s.Resolutions[d.Rule]++
		}
		if len(r.Resolutions) > 0 || len(r.ConnsA) > 1 || len(r.ConnsB) > 1 {
			s.Duplicates++
		}
		if r.PingMs > 0 {
			pings = append(pings, r.PingMs)
		}
		if r.PerfMBps > 0 {
			perfs = append(perfs, r.PerfMBps)
		}
	}
	s.MedianPingMs, s.MedianPerfMBs = median(pings), median(perfs)
	return s
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Clone(xs)
	slices.Sort(xs)
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

func printSummary(w io.Writer, s demoSummary) {
	const indent = "          "
	fmt.Fprintf(w, "\nsummary   %d rounds: %d ok, %d failed\n", s.Rounds, s.OK, s.Failed)
	fmt.Fprintf(w, "%sTCP       %d simultaneous open, %d crossing dials, %d single dial",
		indent, s.Outcomes[outcomeSimopen], s.Outcomes[outcomeCrossing], s.Outcomes[outcomeSingle])
	if other := s.Rounds - s.Outcomes[outcomeSimopen] - s.Outcomes[outcomeCrossing] - s.Outcomes[outcomeSingle]; other > 0 {
		fmt.Fprintf(w, ", %d other", other)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%selections %d: a initiator %d, b initiator %d, %d decided by tie-break\n", indent, s.Elections, s.WonByA, s.WonByB, s.TieBreaks)
	total := 0
	rules := make([]string, 0, len(s.Resolutions))
	for rule, n := range s.Resolutions {
		total += n
		rules = append(rules, rule)
	}
	slices.Sort(rules)
	fmt.Fprintf(w, "%sresolved  %d rounds had a duplicate; %d decisions by a host to close its end", indent, s.Duplicates, total)
	for _, rule := range rules {
		fmt.Fprintf(w, ", %d by rule %q", s.Resolutions[rule], rule)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "%sping      median %.3f ms\n", indent, s.MedianPingMs)
	if s.PerfBytes > 0 {
		fmt.Fprintf(w, "%sperf      median %.0f MB/s (%d bytes down per round)\n", indent, s.MedianPerfMBs, s.PerfBytes)
	}
}
