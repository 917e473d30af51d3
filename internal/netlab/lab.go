package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Prefix starts the name of every namespace netlab creates. The full name is
// Prefix + "<pid>-<n><a|b>", where pid is the creating process: the sweep of
// stale namespaces uses it to tell abandoned namespaces from live ones.
const Prefix = "cnlab-"

// LinkName is the name of the veth end inside each namespace. The two ends
// are created directly inside their namespaces, so the name never appears in
// the root namespace and cannot collide between parallel tests.
const LinkName = "veth0"

// commandTimeout bounds every `ip`/`iptables` invocation netlab makes, so a
// wedged tool fails the test instead of hanging it.
const commandTimeout = 20 * time.Second

// pairCounter numbers the pairs of this process; it makes names and
// addresses unique.
var pairCounter atomic.Uint32

// Pair is two hosts, A and B, each in its own network namespace, joined by a
// veth pair. A has the addresses 10.x.y.1/24 and fd00:cc:x:y::1/64, B has .2
// and ::2; x.y is unique within the process. Loopback is up in both. Each
// host has static (permanent) neighbour entries for the other's addresses,
// so there is no ARP or neighbour discovery and the first packet is never
// delayed or lost; IPv6 duplicate address detection is off.
type Pair struct {
	A, B *Host
	ent  *entry
}

// Host is one end of a Pair: a network namespace with one veth link.
type Host struct {
	// Name is the namespace's name, as `ip netns list` shows it.
	Name string
	// Link is the veth interface inside the namespace (LinkName).
	Link string
	// Addr is the host's IPv4 address on Link (prefix length 24).
	Addr netip.Addr
	// Addr6 is the host's IPv6 address on Link (prefix length 64, added
	// without duplicate address detection so it is usable at once).
	Addr6 netip.Addr

	ent *entry
	// nfqueueNum hands out NFQUEUE numbers for delay lines in this
	// namespace.
	nfqueueNum atomic.Uint32
}

// NewPair creates two namespaces joined by a veth pair and registers their
// removal with tb.Cleanup. It calls Require first, so a test that cannot use
// namespaces is skipped (or failed under CI=true) right there. The first call
// in a process also removes namespaces left behind by earlier, interrupted
// test runs (see SweepStale).
//
// Everything NewPair and the Host methods create — namespaces, the veth pair
// (which lives and dies with its namespaces), iptables rules, processes,
// delay lines — is removed when the test ends, whether it passed or failed,
// and also on SIGINT or SIGTERM while the pair is alive.
func NewPair(tb testing.TB) *Pair {
	tb.Helper()
	Require(tb)
	if err := sweepOnce(); err != nil {
		tb.Fatalf("netlab: sweeping stale namespaces: %v", err)
	}
	n := pairCounter.Add(1)
	x, y := byte(n>>8), byte(n)
	base := fmt.Sprintf("%s%d-%d", Prefix, os.Getpid(), n)
	p := &Pair{}
	p.ent = register()
	tb.Cleanup(func() {
		if err := p.ent.cleanup(); err != nil {
			tb.Errorf("netlab: cleaning up %s: %v", base, err)
		}
	})
	mk := func(suffix string, host byte) *Host {
		return &Host{
			Name:  base + suffix,
			Link:  LinkName,
			Addr:  netip.AddrFrom4([4]byte{10, x, y, host}),
			Addr6: netip.AddrFrom16([16]byte{0xfd, 0x00, 0x00, 0xcc, 0, x, 0, y, 15: host}),
			ent:   p.ent,
		}
	}
	p.A, p.B = mk("a", 1), mk("b", 2)

	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	for _, h := range []*Host{p.A, p.B} {
		if out, err := exec.CommandContext(ctx, "ip", "netns", "add", h.Name).CombinedOutput(); err != nil {
			tb.Fatalf("netlab: ip netns add %s: %v: %s", h.Name, err, out)
		}
		p.ent.addNamespace(h.Name)
		// Duplicate address detection would keep the link-local address
		// tentative for about a second, and IPv6 neighbour discovery with
		// it; the first IPv6 SYN would then be lost. Interfaces created
		// afterwards inherit "default".
		if err := h.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", []byte("0"), 0)
		}); err != nil {
			tb.Fatalf("netlab: disabling IPv6 DAD in %s: %v", h.Name, err)
		}
	}
	steps := [][]string{
		{"ip", "link", "add", LinkName, "netns", p.A.Name, "type", "veth", "peer", "name", LinkName, "netns", p.B.Name},
	}
	for _, h := range []*Host{p.A, p.B} {
		steps = append(steps,
			[]string{"ip", "-n", h.Name, "link", "set", "lo", "up"},
			[]string{"ip", "-n", h.Name, "addr", "add", h.Addr.String() + "/24", "dev", LinkName},
			[]string{"ip", "-n", h.Name, "addr", "add", h.Addr6.String() + "/64", "dev", LinkName, "nodad"},
			[]string{"ip", "-n", h.Name, "link", "set", LinkName, "up"},
		)
	}
	for _, s := range steps {
		if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("netlab: %s: %v: %s", strings.Join(s, " "), err, out)
		}
	}
	// Static neighbour entries: without them the first IPv6 packet between
	// the hosts was lost while neighbour discovery ran (measured: the
	// first connect took one SYN retransmission, 1 s), and ARP adds its
	// own first-packet delay. With them the link behaves the same from
	// the first packet on.
	macs := make(map[*Host]string, 2)
	for _, h := range []*Host{p.A, p.B} {
		if err := h.Do(func() error {
			ifc, err := net.InterfaceByName(LinkName)
			if err != nil {
				return err
			}
			macs[h] = ifc.HardwareAddr.String()
			return nil
		}); err != nil {
			tb.Fatalf("netlab: reading the MAC address of %s in %s: %v", LinkName, h.Name, err)
		}
	}
	for _, h := range []*Host{p.A, p.B} {
		peer := p.Peer(h)
		for _, a := range []netip.Addr{peer.Addr, peer.Addr6} {
			s := []string{"ip", "-n", h.Name, "neigh", "replace", a.String(), "lladdr", macs[peer], "dev", LinkName, "nud", "permanent"}
			if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
				tb.Fatalf("netlab: %s: %v: %s", strings.Join(s, " "), err, out)
			}
		}
	}
	return p
}

// Peer returns the other host of the pair.
func (p *Pair) Peer(h *Host) *Host {
	if h == p.A {
		return p.B
	}
	return p.A
}

// Run runs a command inside the host's namespace (`ip netns exec`) and
// returns its combined output. The command is bounded by ctx and by
// netlab's own command timeout.
func (h *Host) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	argv := append([]string{"netns", "exec", h.Name, name}, args...)
	out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s %s: %w: %s", h.Name, name, strings.Join(args, " "), err, trimOutput(out))
	}
	return out, nil
}

// Start starts a long-running command inside the host's namespace. The
// process is killed (SIGKILL, by PID) and reaped when the test ends, unless it
// has exited before. The returned Cmd has been started; callers may Wait on
// it only through the returned wait function, which is safe to call at any
// time and returns the process's exit error.
func (h *Host) Start(name string, args ...string) (cmd *exec.Cmd, wait func() error, err error) {
	cmd = h.Command(name, args...)
	if wait, err = h.StartCommand(cmd); err != nil {
		return nil, nil, err
	}
	return cmd, wait, nil
}

// Command returns the command that runs name inside the host's namespace
// (`ip netns exec`), not started, for a caller that sets its environment or
// files before StartCommand. `ip netns exec` execs name in place, so the
// started process's PID is name's.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// StartCommand starts cmd, made by Command, with the same cleanup as Start:
// killed by PID and reaped when the test ends. Wait on it only through the
// returned function.
func (h *Host) StartCommand(cmd *exec.Cmd) (wait func() error, err error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("in %s: starting %s: %w", h.Name, cmd, err)
	}
	wait = sync.OnceValue(cmd.Wait)
	h.ent.addProcess(cmd.Process.Pid, wait)
	return wait, nil
}

// trimOutput trims command output for an error message.
func trimOutput(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// entry is everything one Pair created, in creation order, so it can be
// undone both by the test's cleanup and by the interrupt handler.
type entry struct {
	mu         sync.Mutex
	done       bool
	namespaces []string
	pids       []process
	undo       []func() error // iptables rules, delay lines; run last-first
}

type process struct {
	pid  int
	wait func() error
}

func (e *entry) addNamespace(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.namespaces = append(e.namespaces, name)
}

func (e *entry) addProcess(pid int, wait func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pids = append(e.pids, process{pid, wait})
}

func (e *entry) addUndo(f func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.undo = append(e.undo, f)
}

// cleanup undoes everything, once: rules and delay lines last-first, then
// processes (killed by PID and reaped), then the namespaces (deleting a
// namespace removes its veth end, and the other end with it). It carries on
// after errors and reports them all.
func (e *entry) cleanup() error {
	e.mu.Lock()
	if e.done {
		e.mu.Unlock()
		return nil
	}
	e.done = true
	undo, pids, nss := e.undo, e.pids, e.namespaces
	e.mu.Unlock()
	defer unregister(e)

	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		if err := undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range pids {
		// ESRCH means the process has exited already; Wait reaps it in
		// either case.
		if proc, err := os.FindProcess(p.pid); err == nil {
			_ = proc.Kill()
		}
		_ = p.wait()
	}
	for _, ns := range nss {
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func deleteNamespace(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "del", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns del %s: %w: %s", name, err, trimOutput(out))
	}
	return nil
}

// netnsDir is where iproute2 keeps the bind mounts that name namespaces.
const netnsDir = "/run/netns"

var sweepOnce = sync.OnceValue(func() error { return SweepStale() })

// SweepStale deletes namespaces whose name starts with Prefix and whose
// creating process (the pid in the name) no longer exists. Such namespaces
// are left when a test binary dies without running its cleanups: SIGKILL, or
// the panic `go test -timeout` raises. NewPair calls it once per process; a
// human can do the same with
//
//	ip -all netns list | grep '^cnlab-'   # then: ip netns del <name>
//
// A namespace is never deleted while its creator is alive. If a pid has been
// reused by an unrelated process the namespace survives until that process
// exits and a later sweep runs.
func SweepStale() error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", netnsDir, err)
	}
	var errs []error
	for _, de := range entries {
		pid, ok := creatorPID(de.Name())
		if !ok || processAlive(pid) {
			continue
		}
		if err := deleteNamespace(de.Name()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// creatorPID extracts the pid from a name made by NewPair.
func creatorPID(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}
