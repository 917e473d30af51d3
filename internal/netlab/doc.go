// Package netlab is Concord's network laboratory for tests: it builds small,
// real networks out of Linux network namespaces so that tests can reproduce
// TCP behaviour deterministically — a TCP simultaneous open, a silently dead
// peer, a lossy or slow link — with the real kernel stack and real sockets.
//
// It is test infrastructure, imported only from _test.go files of other
// packages; library code never imports it. It runs only on Linux as root.
//
// # Require
//
// Every test that needs namespaces starts with
//
//	netlab.Require(t)
//
// (NewPair calls it too) which checks that the process can use namespaces:
// Linux, root, `ip` and `iptables` on PATH, and `ip netns add` works. If it
// cannot, the test is skipped with the reason, except under CI=true, where it
// fails with the reason: in CI these tests are mandatory.
//
// # Pairs and hosts
//
// NewPair creates two hosts, A and B, each a network namespace, joined by a
// veth pair whose ends are created directly inside the namespaces (nothing is
// added to the root namespace, so parallel tests cannot collide). A has
// 10.x.y.1/24 and fd00:cc:x:y::1/64, B has .2 and ::2, loopback is up, the
// neighbour entries are static and IPv6 DAD is off, so the link works from
// the first packet.
//
// Host.Do runs Go code inside a namespace: a goroutine locks its OS thread
// and joins the namespace with setns(2); sockets created there belong to the
// namespace for good. The thread is left locked so the Go runtime destroys it
// when the goroutine ends (see Do). Host.Run and Host.Start run commands
// (`ip netns exec`; Host.Command and Host.StartCommand when the caller sets
// the environment or files first), Host.AddRule installs iptables/ip6tables rules,
// Host.Blackhole makes a host vanish silently (the peer sees no RST, no
// ICMP: a powered-off machine or a forgetful NAT), Host.Sockets lists the
// namespace's TCP sockets with their kernel states, Host.TCPCounters its
// TCP statistics (retransmissions, timeouts, listen drops) and
// Host.LinkStats the veth link's packet and drop counters.
//
// Concord hosts are not run under Do: a host dials and accepts on goroutines
// of its own, which would be in the root namespace. internal/nspeer starts
// each host as a process inside the namespace and drives it.
//
// # Clusters
//
// NewCluster creates N hosts (up to MaxClusterSize) on one bridge: each host
// is a namespace with one veth link whose far end sits in a switch
// namespace holding the bridge, so a cluster, too, adds nothing to the root
// namespace. Host i has 10.x.y.(i+1)/24 and fd00:cc:x:y::(i+1)/64, a fixed
// MAC address and static neighbour entries for every other host; the set-up
// runs one `ip -batch` per namespace. ClusterOptions adds a delay line and
// random loss on every host's link. Hosts are the same Host type as a
// pair's: Blackhole, AddRule, Start work on them unchanged. internal/nspeer
// runs a peer process on each host (nspeer.Program.NewCluster).
//
// # Simultaneous open
//
// Pair.SimultaneousOpen forces a TCP simultaneous open: outgoing bare SYNs
// are dropped in both namespaces, both dials start, and once both sockets are
// in SYN-SENT the rules go; the SYNs retransmitted after the initial RTO
// (~1 s) cross. It is deterministic: no timing race decides the outcome.
//
// The fast variant, Pair.SimultaneousOpenInFlight, puts a delay line (below)
// on both hosts and releases both dials at once: the SYNs cross in flight
// within a few delays, but only if the dials start less than the delay apart;
// it reports the measured start skew so callers can tell.
//
// # Delay lines
//
// Host.DelayLine holds every packet leaving the host on its veth link for a
// fixed time, in order, through an NFQUEUE consumer netlab implements on raw
// netlink (golang.org/x/sys/unix, NETLINK_NETFILTER): the queue is bound in
// metadata-copy mode with fail-open, and each packet gets NF_ACCEPT when its
// delay has passed. A line on each host adds twice the delay to a round
// trip (TestDelayLine checks the ping-pong time). Stop (run at test end too) removes the
// rules first and then releases what is still held, so stopping loses no
// packet. It is the building block for latency-dependent tests.
//
// # Cleanup
//
// Everything is undone through tb.Cleanup whether the test passes or fails:
// rules and other registered undo steps (last first), then processes started
// with Start (SIGKILL by PID, then reaped), then the namespaces (which takes
// the veth pair with them). On SIGINT or SIGTERM a handler, installed only
// while a pair is alive, does the same and then re-raises the signal. A
// binary that dies without either — SIGKILL, or the panic of `go test
// -timeout` — leaves namespaces named Prefix+"<pid>-…"; the first NewPair of
// the next run deletes those whose pid is gone (SweepStale). By hand:
//
//	ip netns list | grep '^cnlab-' | cut -d' ' -f1 | xargs -rn1 ip netns del
//
// Sockets a test still holds keep their namespace's network stack alive after
// its name is deleted, until the test closes them.
//
// # Limits
//
// No tc netem in the kernel this was written on, so delay is made with
// NFQUEUE and loss with iptables. A delay line is only as precise as the
// scheduling of its two goroutines (well under a millisecond when idle, more
// on a loaded machine); it is for delays of milliseconds, not microseconds,
// and packets pass undelayed if more than 4096 are held at once. Namespaces are created with the `ip` tool, not
// through netlink directly, costing a few milliseconds per command.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package netlab
