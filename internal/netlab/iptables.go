package netlab

import (
	"context"
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
			return fmt.Errorf("in %s: deleting rule %q: %w: %s", h.Name, r, err, bytes(out))
		}
		return nil
	})
	h.ent.addUndo(remove)
	return remove, nil
}
