package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MaxClusterSize is the largest cluster NewCluster builds: the hosts share
// one /24.
const MaxClusterSize = 250

// BridgeName is the bridge inside a cluster's switch namespace.
const BridgeName = "br0"

// clusterSetupTimeout bounds the whole set-up of a cluster (every command
// is bounded by commandTimeout too).
const clusterSetupTimeout = 2 * time.Minute

// ClusterOptions shape a cluster's links. The zero value is a plain
// switched LAN.
type ClusterOptions struct {
	// Delay, if positive, holds every packet a host sends for Delay (a
	// delay line on each host's link, Host.DelayLine): any two hosts are
	// Delay apart one way, 2·Delay per round trip.
	Delay time.Duration
	// Loss, if positive, drops that fraction (0 < Loss < 1) of the
	// packets each host sends, at random (iptables statistic match), so
	// a path between two hosts loses about 2·Loss of its round trips.
	Loss float64
}

// Cluster is N hosts, each a network namespace with one veth link, joined
// by one bridge that lives in a namespace of its own (the switch), so
// nothing is added to the root namespace. Host i has 10.x.y.(i+1)/24 and
// fd00:cc:x:y::(i+1)/64, a fixed MAC address, and static neighbour entries
// for every other host, so that the first packet between any two hosts is
// neither delayed nor lost.
type Cluster struct {
	Hosts []*Host
	// Switch is the name of the namespace that holds the bridge and the
	// hosts' far veth ends (p0, p1, …).
	Switch string
	// Delays are the hosts' delay lines (ClusterOptions.Delay), in host
	// order; nil without a delay.
	Delays []*DelayLine

	ent *entry
}

// NewCluster creates a cluster of n hosts (1 ≤ n ≤ MaxClusterSize) and
// registers its removal with tb.Cleanup, as NewPair does: it calls Require,
// sweeps stale namespaces once per process, and everything it creates —
// namespaces, links, rules, delay lines, processes started with the hosts'
// Start — goes when the test ends, pass or fail, or on SIGINT/SIGTERM.
//
// The set-up runs `ip -batch` once per namespace (2n+3 commands in all),
// so it costs a fraction of a second for tens of hosts; it is bounded by
// two minutes as a whole.
func NewCluster(tb testing.TB, n int, o ClusterOptions) *Cluster {
	tb.Helper()
	if n < 1 || n > MaxClusterSize {
		tb.Fatalf("netlab: a cluster of %d hosts: want 1 to %d", n, MaxClusterSize)
	}
	if o.Loss < 0 || o.Loss >= 1 {
		tb.Fatalf("netlab: cluster loss %v: want 0 ≤ loss < 1", o.Loss)
	}
	Require(tb)
	if err := sweepOnce(); err != nil {
		tb.Fatalf("netlab: sweeping stale namespaces: %v", err)
	}
	num := pairCounter.Add(1)
	x, y := byte(num>>8), byte(num)
	base := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), num)
	c := &Cluster{Switch: base + "sw", ent: register()}
	tb.Cleanup(func() {
		if err := c.ent.cleanup(); err != nil {
			tb.Errorf("netlab: cleaning up cluster %s: %v", base, err)
		}
	})
	macs := make([]string, n)
	for i := range n {
		c.Hosts = append(c.Hosts, &Host{
			Name:  fmt.Sprintf("%sh%d", base, i),
			Link:  LinkName,
			Addr:  netip.AddrFrom4([4]byte{10, x, y, byte(i + 1)}),
			Addr6: netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, 0xcc, 0, x, 0, y, 15: byte(i + 1)}),
			ent:   c.ent,
		})
		// Locally administered unicast (02:…), unique per cluster.
		macs[i] = fmt.Sprintf("02:cc:%02x:%02x:00:%02x", x, y, i+1)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterSetupTimeout)
	defer cancel()
	for _, name := range append([]string{c.Switch}, names(c.Hosts)...) {
		if err := runCtx(ctx, nil, "ip", "netns", "add", name); err != nil {
			tb.Fatalf("netlab: %v", err)
		}
		c.ent.addNamespace(name)
	}
	for _, h := range c.Hosts {
		// As in NewPair: without DAD the IPv6 address is usable at once.
		if err := h.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0)
		}); err != nil {
			tb.Fatalf("netlab: disabling IPv6 DAD in %s: %v", h.Name, err)
		}
	}
	// The veth pairs, created from the root namespace with each end
	// directly in its own namespace.
	var links []string
	for i, h := range c.Hosts {
		links = append(links, fmt.Sprintf("link add %s netns %s address %s type veth peer name p%d netns %s",
			LinkName, h.Name, macs[i], i, c.Switch))
	}
	if err := ipBatch(ctx, "", links); err != nil {
		tb.Fatalf("netlab: creating the cluster's links: %v", err)
	}
	sw := []string{
		"link set lo up",
		"link add " + BridgeName + " type bridge stp_state 0 forward_delay 0",
		"link set " + BridgeName + " up",
	}
	for i := range c.Hosts {
		sw = append(sw, fmt.Sprintf("link set p%d master %s", i, BridgeName), fmt.Sprintf("link set p%d up", i))
	}
	if err := ipBatch(ctx, c.Switch, sw); err != nil {
		tb.Fatalf("netlab: setting up the bridge: %v", err)
	}
	for i, h := range c.Hosts {
		cmds := []string{
			"link set lo up",
			fmt.Sprintf("addr add %s/24 dev %s", h.Addr, LinkName),
			fmt.Sprintf("addr add %s/64 dev %s nodad", h.Addr6, LinkName),
			"link set " + LinkName + " up",
		}
		for j, peer := range c.Hosts {
			if j == i {
				continue
			}
			for _, a := range []netip.Addr{peer.Addr, peer.Addr6} {
				cmds = append(cmds, fmt.Sprintf("neigh replace %s lladdr %s dev %s nud permanent", a, macs[j], LinkName))
			}
		}
		if err := ipBatch(ctx, h.Name, cmds); err != nil {
			tb.Fatalf("netlab: setting up %s: %v", h.Name, err)
		}
	}
	if o.Loss > 0 {
		p := strconv.FormatFloat(o.Loss, 'f', -1, 64)
		for _, h := range c.Hosts {
			for _, v6 := range []bool{false, true} {
				r := Rule{Chain: "OUTPUT", IPv6: v6, Spec: []string{"-o", LinkName, "-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"}}
				if _, err := h.AddRule(ctx, r); err != nil {
					tb.Fatalf("netlab: %v", err)
				}
			}
		}
	}
	if o.Delay > 0 {
		for _, h := range c.Hosts {
			dl, err := h.DelayLine(ctx, o.Delay)
			if err != nil {
				tb.Fatalf("netlab: delay line in %s: %v", h.Name, err)
			}
			c.Delays = append(c.Delays, dl)
		}
	}
	return c
}

// Close removes everything the cluster created now, rather than at the end
// of the test: rules and delay lines, processes, namespaces. Later calls,
// and the test's cleanup, do nothing.
func (c *Cluster) Close() error { return c.ent.cleanup() }

// Namespaces lists the names of the cluster's namespaces: the switch and
// the hosts.
func (c *Cluster) Namespaces() []string { return append([]string{c.Switch}, names(c.Hosts)...) }

func names(hs []*Host) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = h.Name
	}
	return out
}

// ipBatch runs `ip -batch -` (in namespace ns unless it is empty) with one
// command per line on its standard input.
func ipBatch(ctx context.Context, ns string, cmds []string) error {
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	return runCtx(ctx, strings.NewReader(strings.Join(cmds, "\n")+"\n"), "ip", args...)
}

// runCtx runs a command bounded by ctx and commandTimeout.
func runCtx(ctx context.Context, stdin *strings.Reader, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, trimOutput(out))
	}
	return nil
}
