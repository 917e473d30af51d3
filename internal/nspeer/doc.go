// Package nspeer is the one harness that runs Concord hosts in network
// namespaces: each host is a process of the nspeer program (faults/nspeer)
// started inside a namespace of internal/netlab and driven from the test over
// a Unix control socket. The host tests, the fault suite (faults) and this
// package's own tests use it; it is imported only from _test.go files.
//
// A host dials and accepts on goroutines of its own, so one started in the
// test process under netlab.Host.Do would dial from the root namespace. A
// process started with `ip netns exec` lives in the namespace as a whole,
// and can be killed, frozen and restarted like a real program.
//
// # Use
//
//	prog := nspeer.Build(t, nspeer.BuildConfig{Race: nspeer.RaceEnabled})
//	pair := netlab.NewPair(t)
//	a := prog.Start(t, pair.A, nspeer.Options{Name: "A", Port: 4001})
//	b := prog.Start(t, pair.B, nspeer.Options{Name: "B", Port: 4002})
//	var r nspeer.ConnectReply
//	a.Must(&r, "connect", b.ID, b.Addr, "echo")
//	sa, sb, err := nspeer.Converged(a, b, time.Second)
//
// Build compiles the program once for a test (and whatever runs under it);
// Start starts one process and waits until its host is ready. A command is a
// verb and its arguments (faults/nspeer/commands.go lists them with their reply
// fields): Must runs one and fails the test if it reports an error, Call
// leaves the error to the caller in the reply's Result, and Send and Await
// split a command so that several run at once (two dials that cross, say).
// WaitEvent waits for a host event (a connection opened, closed, or resolved
// as a duplicate, a failed hello), past or future. Signal, Kill and Restart treat the process
// as a program (SIGSTOP a peer, kill -9 it, start it again with the same key
// file and port), and FDs counts its open descriptors from outside.
//
// # Clusters
//
// Program.NewCluster prepares one peer per host of a netlab.NewCluster,
// each with a key file generated up front (every identity is known before
// any process starts) and the listen port ClusterPort. Cluster.Start starts
// processes all at once and tells each, as soon as it is ready, to keep
// connected to every other (keep); Kill SIGKILLs them at once; Check and
// CheckMirrored ask every host for its table (table) and count the pairs
// with exactly one connection, the same on both ends; Counters and Usage
// gather the hosts' counters and goroutines/descriptors. Timeline replays
// every process's events on the machine's one clock and gives the number
// of such pairs over time, so the figures do not depend on polling.
// BuildConfig.Package builds another program that speaks the same protocol
// (the interop module's go-libp2p peer).
//
// # Bounds and ending
//
// Every wait is bounded: a start by 20 s, a reply by 75 s (the program bounds
// each command by 60 s), an event wait by its caller. Stop closes the
// control connection, upon which the program closes its host and exits; it
// is killed after 10 s. Stop runs at the end of the test if the test did not
// call it, and netlab kills whatever is left by PID. Stop fails the test if a
// process it did not kill exited with an error or had to be killed, and if
// any process reported a data race.
//
// # Limits
//
// Linux as root only (netlab.Require). The command vocabulary is test
// infrastructure with no stable interface: a test that needs a new probe adds
// a verb to faults/nspeer. The peers run under the race detector only when
// BuildConfig.Race says so; the fault suite runs plain binaries because its
// timings are meant for them.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package nspeer
