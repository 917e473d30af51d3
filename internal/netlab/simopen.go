package netlab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ErrNoSynSent is returned by SimultaneousOpen when the two dials did not
// both reach SYN-SENT in time, so the crossing could not be arranged.
var ErrNoSynSent = errors.New("netlab: dials did not both reach SYN-SENT")

// synSentWait bounds how long SimultaneousOpen waits for both sockets to
// reach SYN-SENT; a dial normally gets there within milliseconds.
const synSentWait = 5 * time.Second

// synDrop matches a bare SYN: SYN set, ACK clear. SYN-ACKs and everything
// later pass.
var synDrop = []string{"-p", "tcp", "--tcp-flags", "SYN,ACK", "SYN", "-j", "DROP"}

// SimultaneousOpen makes two dials cross in a TCP simultaneous open,
// deterministically. dialA runs in A's namespace (under Do) and must
// connect to B; dialB runs in B's namespace and must connect to A. For a
// simultaneous open both must dial from the port the other one targets
// (typically each side's listen port), which is the caller's business.
//
// The method: a rule dropping outgoing bare SYNs is added in both
// namespaces (for IPv4 and IPv6), both dials start, and once each namespace
// holds a socket in SYN-SENT towards the other host the rules are removed.
// Each kernel retransmits its SYN after the initial RTO (~1 s on Linux);
// each retransmitted SYN meets a socket in SYN-SENT on the far side, which
// answers SYN-ACK, and both sockets become ESTABLISHED without either
// listener being involved. A run costs about one second.
//
// SimultaneousOpen returns when both dials have returned, with their errors
// joined (each wrapped to name its host), or with ErrNoSynSent when the
// sockets did not both reach SYN-SENT within 5 s (or before ctx ended); the
// dials are still awaited in that case, and the rules are removed whatever
// happens. ctx is passed to both dials and bounds the wait.
//
// Before calling it, the namespaces should hold no other SYN-SENT socket
// between the two hosts (use a fresh Pair or let earlier dials finish).
func (p *Pair) SimultaneousOpen(ctx context.Context, dialA, dialB func(ctx context.Context) error) error {
	removeAll, err := p.DropBareSYNs(ctx)
	if err != nil {
		return err
	}
	defer removeAll()

	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- p.A.Do(func() error { return dialA(ctx) }) }()
	go func() { errB <- p.B.Do(func() error { return dialB(ctx) }) }()

	waitErr := p.waitSynSent(ctx, errA, errB)
	rmErr := removeAll()

	ea, eb := <-errA, <-errB
	var errs []error
	if waitErr != nil {
		errs = append(errs, waitErr)
	}
	if rmErr != nil {
		errs = append(errs, rmErr)
	}
	if ea != nil {
		errs = append(errs, fmt.Errorf("dial from %s: %w", p.A.Name, ea))
	}
	if eb != nil {
		errs = append(errs, fmt.Errorf("dial from %s: %w", p.B.Name, eb))
	}
	return errors.Join(errs...)
}

// DropBareSYNs adds, in both namespaces, rules dropping outgoing bare SYNs
// (IPv4 and IPv6), the first half of SimultaneousOpen's method, for tests
// whose dials run elsewhere (in child processes, say). The returned
// function removes the rules; it is idempotent, and the rules are removed
// when the test ends anyway. Use WaitSynSent before removing them.
func (p *Pair) DropBareSYNs(ctx context.Context) (remove func() error, err error) {
	var removes []func() error
	remove = func() error {
		var errs []error
		for _, r := range removes {
			errs = append(errs, r())
		}
		return errors.Join(errs...)
	}
	for _, h := range []*Host{p.A, p.B} {
		for _, v6 := range []bool{false, true} {
			rm, err := h.AddRule(ctx, Rule{Chain: "OUTPUT", Spec: synDrop, IPv6: v6})
			if err != nil {
				return nil, errors.Join(err, remove())
			}
			removes = append(removes, rm)
		}
	}
	return remove, nil
}

// WaitSynSent polls both namespaces until each holds a socket in SYN-SENT
// towards the other host, at most 5 s or until ctx ends, and then fails
// with ErrNoSynSent.
func (p *Pair) WaitSynSent(ctx context.Context) error { return p.waitSynSent(ctx, nil, nil) }

// waitSynSent polls both namespaces until each has a SYN-SENT socket towards
// the other host. It gives up early if a dial returns (it can no longer
// reach SYN-SENT), putting the dial's result back for the caller; nil
// channels mean dials it does not know of.
func (p *Pair) waitSynSent(ctx context.Context, errA, errB chan error) error {
	ctx, cancel := context.WithTimeout(ctx, synSentWait)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		a, err := p.A.hasSynSentTo(p.B)
		if err != nil {
			return err
		}
		b, err := p.B.hasSynSentTo(p.A)
		if err != nil {
			return err
		}
		if a && b {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (A: %v, B: %v): %w", ErrNoSynSent, a, b, context.Cause(ctx))
		case e := <-errA:
			errA <- e
			return fmt.Errorf("%w: the dial in %s returned first", ErrNoSynSent, p.A.Name)
		case e := <-errB:
			errB <- e
			return fmt.Errorf("%w: the dial in %s returned first", ErrNoSynSent, p.B.Name)
		case <-tick.C:
		}
	}
}

func (h *Host) hasSynSentTo(peer *Host) (bool, error) {
	ss, err := h.Sockets()
	if err != nil {
		return false, err
	}
	for _, s := range ss {
		if s.State == StateSynSent && peer.owns(s.Remote.Addr()) {
			return true, nil
		}
	}
	return false, nil
}

func (h *Host) owns(a netip.Addr) bool { return a == h.Addr || a == h.Addr6 }

// SimultaneousOpenInFlight is the fast variant of SimultaneousOpen: delay
// lines of d on both hosts hold every outgoing packet for d, both dials are
// released at the same instant, and as long as they start less than d
// apart, each SYN reaches the other host after that host's own SYN has
// left, so the SYNs cross in flight. A run costs a few times d instead of a
// SYN retransmission.
//
// Unlike SimultaneousOpen it depends on timing: the returned skew is how far
// apart the two dial functions were entered (measured on the dialing
// threads). If skew is not well below d, the run proves nothing either way;
// callers should check what they got and treat such runs as inconclusive.
// The delay lines are stopped before it returns.
func (p *Pair) SimultaneousOpenInFlight(ctx context.Context, d time.Duration, dialA, dialB func(ctx context.Context) error) (skew time.Duration, err error) {
	var lines []*DelayLine
	defer func() {
		for _, l := range lines {
			err = errors.Join(err, l.Stop())
		}
	}()
	for _, h := range []*Host{p.A, p.B} {
		l, err := h.DelayLine(ctx, d)
		if err != nil {
			return 0, err
		}
		lines = append(lines, l)
	}
	start := make(chan struct{})
	type result struct {
		began time.Time
		err   error
	}
	run := func(h *Host, dial func(context.Context) error, out chan<- result) {
		var r result
		r.err = h.Do(func() error {
			<-start
			r.began = time.Now()
			return dial(ctx)
		})
		out <- r
	}
	ra, rb := make(chan result, 1), make(chan result, 1)
	go run(p.A, dialA, ra)
	go run(p.B, dialB, rb)
	close(start)
	a, b := <-ra, <-rb
	skew = a.began.Sub(b.began).Abs()
	if a.err != nil {
		err = errors.Join(err, fmt.Errorf("dial from %s: %w", p.A.Name, a.err))
	}
	if b.err != nil {
		err = errors.Join(err, fmt.Errorf("dial from %s: %w", p.B.Name, b.err))
	}
	return skew, err
}
