package netlab

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// Rule is one iptables rule.
type Rule struct {
	// Table is the iptables table; empty means "filter".
	Table string
	// Chain is the chain the rule is appended to, e.g. "OUTPUT".
	Chain string
	// Spec is the rest of the rule: matches and target, as iptables
	// takes them, e.g. {"-p", "tcp", "-j", "DROP"}.
	Spec []string
	// IPv6 selects ip6tables instead of iptables.
	IPv6 bool
}

func (r Rule) args(op string) []string {
	table := r.Table
	if table == "" {
		table = "filter"
	}
	// -w: wait for the xtables lock rather than fail when a parallel test
	// holds it.
	return append([]string{"-w", "-t", table, op, r.Chain}, r.Spec...)
}

func (r Rule) tool() string {
	if r.IPv6 {
		return "ip6tables"
	}
	return "iptables"
}

func (r Rule) String() string {
	return r.tool() + " " + strings.Join(r.args("-A"), " ")
}

// AddRule appends r in the host's namespace and returns a function that
// deletes it again. The deletion also runs when the test ends, so callers
// may ignore it; calling it more than once deletes the rule once and
// returns the first result every time.
func (h *Host) AddRule(ctx context.Context, r Rule) (remove func() error, err error) {
	if _, err := h.Run(ctx, r.tool(), r.args("-A")...); err != nil {
		return nil, fmt.Errorf("adding rule %q: %w", r, err)
	}
	remove = sync.OnceValue(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
		defer cancel()
		argv := append([]string{"netns", "exec", h.Name, r.tool()}, r.args("-D")...)
		if out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput(); err != nil {
			return fmt.Errorf("in %s: deleting rule %q: %w: %s", h.Name, r, err, trimOutput(out))
		}
		return nil
	})
	h.ent.addUndo(remove)
	return remove, nil
}

// Blackhole makes the host vanish from its link without a trace: every
// packet arriving on its veth is dropped on input and every packet it sends
// there is dropped on output, for IPv4 and IPv6. Its peer sees silence — no
// RST, no ICMP — exactly as when a machine loses power or a NAT forgets a
// mapping. restore removes the rules (it also runs when the test ends).
//
// The host's own stack sees its sends fail locally (EPERM from the output
// rule), which TCP treats as loss; tests usually watch the other host.
func (h *Host) Blackhole(ctx context.Context) (restore func() error, err error) {
	var removes []func() error
	restore = func() error {
		var errs []error
		for _, rm := range removes {
			errs = append(errs, rm())
		}
		return errors.Join(errs...)
	}
	for _, v6 := range []bool{false, true} {
		for _, r := range []Rule{
			{Chain: "INPUT", Spec: []string{"-i", h.Link, "-j", "DROP"}, IPv6: v6},
			{Chain: "OUTPUT", Spec: []string{"-o", h.Link, "-j", "DROP"}, IPv6: v6},
		} {
			rm, err := h.AddRule(ctx, r)
			if err != nil {
				return nil, errors.Join(err, restore())
			}
			removes = append(removes, rm)
		}
	}
	return restore, nil
}
