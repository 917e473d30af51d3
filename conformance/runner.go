package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
)

// Outcome is a case's verdict.
type Outcome int

const (
	Pass Outcome = iota
	Fail
	NotApplicable
)

func (o Outcome) String() string {
	switch o {
	case Pass:
		return "pass"
	case Fail:
		return "fail"
	case NotApplicable:
		return "n/a"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

func (o *Outcome) UnmarshalText(b []byte) error {
	for _, v := range []Outcome{Pass, Fail, NotApplicable} {
		if v.String() == string(b) {
			*o = v
			return nil
		}
	}
	return fmt.Errorf("outcome %q: want pass, fail or n/a", b)
}

// Result is the verdict of one case against one target.
type Result struct {
	ID       string        `json:"id"`
	Rule     string        `json:"rule"`
	Mode     string        `json:"mode"`
	Expected string        `json:"expected"`
	Observed string        `json:"observed"`
	Outcome  Outcome       `json:"outcome"`
	Duration time.Duration `json:"duration_ns"`
}

// Defaults of the Runner's deadlines.
const (
	DefaultAnswerTimeout = 5 * time.Second
	DefaultStageTimeout  = 20 * time.Second
)

// Runner plays cases against one target. The zero value of each optional
// field means its documented default. A Runner is not modified by Run and
// may be reused.
type Runner struct {
	// Target is the target's TCP multiaddr, with or without /p2p/<id>;
	// nil skips the dial cases (not applicable).
	Target ma.Multiaddr
	// TargetID is the target's peer ID; it defaults to Target's /p2p/
	// part. Without it the cases that check it are not applicable.
	TargetID peer.ID
	// Identity is the runner's own identity key (the one a dialing target
	// expects). Nil means a fresh Ed25519 key per Run.
	Identity peer.PrivKey
	// Listener, if not nil, runs the listen cases: the target dials it
	// (once per case) with the runner's peer ID. Run does not close it.
	Listener *net.TCPListener
	// Trigger, if not nil, is called at the start of each listen case to
	// make the target dial addr (a full multiaddr with /p2p/). It runs in
	// its own goroutine and must return when ctx is done. Nil means the
	// target dials by itself (a dial loop).
	Trigger func(ctx context.Context, addr ma.Multiaddr) error
	// AnswerTimeout bounds each wait for an answer. Default 5 s.
	AnswerTimeout time.Duration
	// StageTimeout is how long the target may take to drop a peer that
	// stalls a stage (cases with "within": "stage"). Default 20 s.
	StageTimeout time.Duration
	// Cases to run; nil means Builtin().
	Cases []Case
	// Only, if not nil, selects the cases whose ID it matches.
	Only *regexp.Regexp
}

func (r *Runner) answerTimeout() time.Duration {
	if r.AnswerTimeout > 0 {
		return r.AnswerTimeout
	}
	return DefaultAnswerTimeout
}

func (r *Runner) stageTimeout() time.Duration {
	if r.StageTimeout > 0 {
		return r.StageTimeout
	}
	return DefaultStageTimeout
}

// Run plays every selected case in order and returns their results. It
// fails only on a configuration error; a case that cannot run is a result.
// Cancelling ctx stops at the current case, whose result is a failure.
func (r *Runner) Run(ctx context.Context) ([]Result, error) {
	cases := r.Cases
	if cases == nil {
		var err error
		if cases, err = Builtin(); err != nil {
			return nil, err
		}
	}
	env := runEnv{r: r, targetID: r.TargetID, identity: r.Identity}
	if r.Target != nil {
		ai, err := peer.AddrInfoFromP2pAddr(r.Target)
		if err == nil {
			if env.targetID == "" {
				env.targetID = ai.ID
			}
			env.dialAddr = ai.Addrs[0]
		} else {
			env.dialAddr = r.Target
		}
		tcpAddr, _, err := tcp.ToTCPAddr(env.dialAddr)
		if err != nil {
			return nil, fmt.Errorf("conformance: target %s: %w", r.Target, err)
		}
		env.tcpAddr = tcpAddr.String()
	}
	if env.identity == nil {
		k, err := peer.GenerateKey(peer.Ed25519, nil)
		if err != nil {
			return nil, err
		}
		env.identity = k
	}
	var err error
	if env.selfID, err = peer.IDFromPrivateKey(env.identity); err != nil {
		return nil, err
	}
	if r.Listener != nil {
		a, err := tcp.FromTCPAddr(r.Listener.Addr().(*net.TCPAddr))
		if err != nil {
			return nil, err
		}
		env.listenAddr = a.Encapsulate(ma.StringCast("/p2p/" + env.selfID.String()))
	}
	var out []Result
	for _, c := range cases {
		if r.Only != nil && !r.Only.MatchString(c.ID) {
			continue
		}
		out = append(out, env.runCase(ctx, c))
		if ctx.Err() != nil {
			break
		}
	}
	return out, nil
}

// ListenAddr is the multiaddr a dialing target must dial, given the
// runner's identity; "" without a Listener.
func ListenAddr(l *net.TCPListener, identity peer.PrivKey) (string, error) {
	id, err := peer.IDFromPrivateKey(identity)
	if err != nil {
		return "", err
	}
	a, err := tcp.FromTCPAddr(l.Addr().(*net.TCPAddr))
	if err != nil {
		return "", err
	}
	return a.String() + "/p2p/" + id.String(), nil
}

// runEnv is what every case of one Run shares.
type runEnv struct {
	r          *Runner
	identity   peer.PrivKey
	selfID     peer.ID
	targetID   peer.ID
	dialAddr   ma.Multiaddr
	tcpAddr    string
	listenAddr ma.Multiaddr
}

// verdict is how a case ended early: a failure or not applicable.
type verdict struct {
	outcome  Outcome
	observed string
}

func (v *verdict) Error() string { return v.outcome.String() + ": " + v.observed }

func failf(format string, a ...any) error {
	return &verdict{outcome: Fail, observed: fmt.Sprintf(format, a...)}
}

func notApplicable(format string, a ...any) error {
	return &verdict{outcome: NotApplicable, observed: fmt.Sprintf(format, a...)}
}

func (e *runEnv) runCase(ctx context.Context, c Case) Result {
	start := time.Now()
	mode := c.Mode
	if mode == "" {
		mode = "dial"
	}
	res := Result{ID: c.ID, Rule: c.Rule, Mode: mode, Expected: c.Expect}
	observed, err := e.play(ctx, c, mode)
	res.Duration = time.Since(start)
	var v *verdict
	switch {
	case err == nil:
		res.Outcome, res.Observed = Pass, observed
	case errors.As(err, &v):
		res.Outcome, res.Observed = v.outcome, v.observed
	default:
		res.Outcome, res.Observed = Fail, err.Error()
	}
	return res
}

func (e *runEnv) play(ctx context.Context, c Case, mode string) (string, error) {
	var conn *net.TCPConn
	switch mode {
	case "dial":
		if e.tcpAddr == "" {
			return "", notApplicable("no target address to dial")
		}
		d := net.Dialer{Timeout: e.r.answerTimeout()}
		nc, err := d.DialContext(ctx, "tcp", e.tcpAddr)
		if err != nil {
			return "", failf("dial: %v", err)
		}
		conn = nc.(*net.TCPConn)
	case "listen":
		if e.r.Listener == nil {
			return "", notApplicable("needs a target that dials the runner (listening mode)")
		}
		tctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		if e.r.Trigger != nil {
			go func() {
				defer close(done)
				_ = e.r.Trigger(tctx, e.listenAddr)
			}()
		} else {
			close(done)
		}
		defer func() { cancel(); <-done }()
		_ = e.r.Listener.SetDeadline(time.Now().Add(e.r.answerTimeout() + e.r.stageTimeout()))
		stop := context.AfterFunc(ctx, func() { _ = e.r.Listener.SetDeadline(time.Now()) })
		nc, err := e.r.Listener.AcceptTCP()
		stop()
		if err != nil {
			return "", failf("no dial from the target: %v", err)
		}
		conn = nc
	}
	s := newSession(ctx, e, conn)
	defer s.close()
	stopConn := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stopConn()
	for i, st := range c.Steps {
		if err := ctx.Err(); err != nil {
			return "", failf("cancelled at step %d", i+1)
		}
		if err := s.step(st); err != nil {
			var v *verdict
			if errors.As(err, &v) {
				v.observed = fmt.Sprintf("step %d: %s", i+1, v.observed)
				return "", v
			}
			return "", failf("step %d: %v", i+1, err)
		}
	}
	return s.observed(), nil
}

// WriteTable prints results as an aligned table, then a summary line.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tRULE\tMODE\tOUTCOME\tEXPECTED\tOBSERVED")
	var n [3]int
	for _, r := range results {
		n[r.Outcome]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Rule, r.Mode, r.Outcome, oneLine(r.Expected), oneLine(r.Observed))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d cases: %d pass, %d fail, %d n/a\n", len(results), n[Pass], n[Fail], n[NotApplicable])
	return err
}

// WriteJSON prints results as one JSON array.
func WriteJSON(w io.Writer, results []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if results == nil {
		results = []Result{}
	}
	return enc.Encode(results)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
