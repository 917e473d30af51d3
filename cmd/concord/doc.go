// Command concord runs Concord peers from the command line: a self-contained
// demonstration of simultaneous dials and duplicate resolution, a key tool,
// a server of the ping, perf and echo protocols, their clients, the
// endpoint of the libp2p test-plans transport-interop runner, and the spec
// conformance suite.
//
// Usage:
//
//	concord COMMAND [flags] [arguments]
//
// Flags may be written -flag or --flag, before or after the arguments; "--"
// ends them. Every command takes -h (or --help). Errors are printed as one
// line on stderr starting "concord: ".
//
// # concord demo [-rounds N] [-perf-bytes N] [-wait D] [-json] [host flags]
//
// The main job, with no set-up. Each round starts two hosts, a and b, on
// 127.0.0.1 with port 0 listeners, port reuse on (each dials from its
// listening port) and fresh Ed25519 keys, registers ping, perf and echo on
// both, and releases a.Connect(b) and b.Connect(a) from one barrier at the
// same instant. It then waits up to -wait (1 s) for convergence, pings b from
// a over /ipfs/ping/1.0.0, downloads -perf-bytes (4 MiB; 0 skips it) over
// /perf/1.0.0, and prints:
//
//   - what TCP produced: a "simultaneous open" (one connection, Direction
//     outbound on both ends: the simopen election ran), "crossing dials" (two
//     connections, each with one dialer), or a "single dial" (one Connect
//     returned the connection the other had made); for each connection, who
//     dialed, between which ports, and whether the dialer used its listening
//     port or fell back to an ephemeral one because the kernel refused the
//     4-tuple, which the peer's dial already held;
//   - the election: both numbers, which side became initiator, whether the
//     peer-ID tie-break decided;
//   - the security protocol and muxer, and whether the muxer was inlined in
//     the security handshake;
//   - the duplicate resolution each host reported (rule, the sequence numbers
//     kept and closed), closures no rule explains (the peer closed first),
//     failed upgrades or dials;
//   - the surviving connection, the ping round-trip time and the throughput;
//
// then a summary: rounds ok and failed, how many of each TCP outcome,
// elections won by each side and tie-breaks, resolutions by rule, median
// ping and median throughput. With -json it prints one JSON object per round
// and a final {"summary": {...}} instead.
//
// A round succeeds when each host holds exactly one connection to the other,
// not draining, and it is the same connection: a's sequence number for it is
// the one b's hello announced, and the other way round. Fresh hosts per round
// keep rounds independent: no TIME-WAIT socket, backoff state or draining
// connection of one round can decide the next, and the peer-ID order, which
// the duplicate rule uses, varies between rounds.
//
// On loopback a real TCP simultaneous open is rare: the kernel delivers a SYN
// within the connect call that sent it, so one host's connection is usually
// established (or half-open) before the other host's connect, which then finds
// its 4-tuple taken and retries from an ephemeral port. Crossing dials are
// therefore the common outcome; the demo reports what happened, it does not
// force an outcome. A real simultaneous open needs latency between the peers,
// such as a network namespace with a delay line (internal/netlab).
//
// # concord id [-key FILE] [-v]
//
// Prints the peer ID of the key in FILE, creating the file first with a fresh
// Ed25519 key if it does not exist (mode 0600, atomically, never replacing a
// file). A key file that group or others can access is refused. The default
// FILE is identity.key in the concord folder of the user's configuration
// directory (os.UserConfigDir: $XDG_CONFIG_HOME or ~/.config on Linux),
// whose folder is created (0700) if missing; any other FILE's directory
// must exist, so a mistyped path is an error rather than new folders. -v
// also prints the key type and the CID form of the ID.
//
// # concord listen [-key FILE] [-listen MULTIADDR ...] [host flags]
//
// Serves /ipfs/ping/1.0.0, /perf/1.0.0 and /echo/1.0.0, prints its full
// addresses with /p2p/<peer ID>, one per line (a 0.0.0.0 or :: listener is
// printed once per interface address), and runs until SIGINT or SIGTERM, when
// it closes every connection and exits 0. The default listen address is
// /ip4/127.0.0.1/tcp/4001: loopback, because perf lets any client make the
// server send up to 1 GiB per stream, so serving it to a network must be asked
// for (-listen /ip4/0.0.0.0/tcp/4001). Without -key the identity is fresh each
// run. On stderr it shows each connection: a line when it opens (peer ID,
// remote address, direction, role and any election, security, muxer), one
// with what the peer's identify said (agent, protocol version, protocols,
// listen and observed addresses, whether its record was signed) or why
// identify failed, and one when it closes, with the reason.
//
// # concord ping [-count N] [-interval D] [-timeout D] [-key FILE] [host flags] ADDR
//
// ADDR is a multiaddr ending in /p2p/<peer ID>. Pings -count times (4), one
// every -interval (1 s), printing each round-trip time and a summary (sent,
// answered, loss, min/avg/max). A failed ping is reported and the next one
// opens a new stream. Exits 1 when no ping was answered.
//
// # concord perf [-upload-bytes N] [-download-bytes N] [-json] [-key FILE] [host flags] ADDR
//
// Runs the libp2p perf protocol against ADDR: uploads N bytes (10 MiB), then
// downloads N bytes (10 MiB), and prints the time and throughput of each
// direction and the connection setup time. When stdout is a terminal a
// progress line is redrawn with carriage returns while the transfer runs.
// With -json the output is the test-plans perf runner's JSON lines: an
// "intermediary" line each second with that second's bytes and time, then a
// "final" line whose time includes connecting and opening the stream.
//
// # concord interop
//
// One side of a libp2p interop runner's ping test, configured by the
// environment, in either of the runners' contracts; the case of the
// variables says which.
//
// The unified contract (libp2p/unified-testing,
// docs/write-a-transport-test-app.md): TRANSPORT (tcp), SECURE_CHANNEL
// (noise or tls), MUXER (yamux), IS_DIALER (true or false), TEST_KEY,
// REDIS_ADDR (default transport-redis:6379), LISTENER_IP (default 0.0.0.0),
// TEST_TIMEOUT_SECS (default 180), DEBUG (true: connection events on
// stderr, as -v logs them). The listener DELs, then RPUSHes its multiaddr to the Redis list
// "<TEST_KEY>_listener_multiaddr"; the dialer prints YAML:
//
//	# Measurements from dialer
//	latency:
//	  handshake_plus_one_rtt: 5.011
//	  ping_rtt: 0.599
//	  unit: ms
//
// The older transport-interop contract (libp2p/test-plans,
// transport-interop/README.md): transport, security, muxer, is_dialer, ip
// (default 0.0.0.0), redis_addr (default redis:6379), test_timeout_seconds
// (default 180); the Redis list is "listenerAddr" and the dialer prints one
// JSON line:
//
//	{"handshakePlusOneRTTMillis":12.3,"pingRTTMilllis":0.4}
//
// (the contract's key has three l's). In both the listener serves ping,
// publishes its address (on 0.0.0.0 its first non-loopback interface
// address) and waits until it is stopped (SIGINT or SIGTERM: exit 0) or the
// timeout passes (exit 1); the dialer BLPOPs the address, connects, pings
// once and prints its result, with diagnostics on stderr. With no variable
// of either contract set, or one of a contract's required variables
// missing, it is a usage error naming them. A small RESP client of its own
// (internal/resp) talks to Redis.
//
// # concord conformance [-json] [-run REGEXP] [-listen MULTIADDR] [-peer ID] [-key FILE] [-answer-timeout D] [-stage-timeout D] [MULTIADDR]
//
// Runs the spec conformance suite (package conformance; the rules are
// spec/multistream.md, simopen.md, noise.md, tls.md and yamux.md) against
// the libp2p peer at MULTIADDR over real TCP: malformed multistream-select
// tokens, Noise and TLS handshakes with bad signatures, wrong peer IDs,
// mutated certificates and disjoint muxer lists, yamux window overruns,
// stream-ID reuse, ping floods, stalled handshakes. It prints one row per
// case (id, spec rule, mode, pass/fail/n/a, expected, observed) and a
// summary; -json prints a JSON array instead. -run selects cases by id. The
// listen cases (simultaneous-open elections, the dialer's checks of the
// responder) need -listen: the runner listens there, prints the multiaddr
// to dial on stderr, and waits for one dial per case. -answer-timeout (5 s)
// bounds each wait for an answer; -stage-timeout (20 s) is how long the
// target may take to drop a stalled handshake. Exits 1 when a case fails.
//
// # Host flags
//
// demo, listen, ping and perf share the flags that map onto host.Config, each
// onto one field; 0 (or unset) leaves the field's zero value, the library's
// default: -security P (noise, tls or a preference list such as tls,noise:
// Upgrader.Security.Protocols), -handshake-timeout D (Upgrader.HandshakeTimeout),
// -connect-timeout D (TCP.ConnectTimeout), -user-timeout D (TCP.UserTimeout),
// -share-port (TCP.SharePort),
// -keepalive D and -ping-timeout D (Upgrader.Muxer.Yamux), and
// -max-inbound-upgrades N, -max-inbound-upgrades-per-ip N,
// -max-inbound-upgrades-per-subnet N, -max-inbound-probation N,
// -max-inbound-probation-per-ip N and -first-byte-timeout D (Upgrader).
//
// They also share -v and -log-format text|json: the host's events logged on
// stderr through log/slog (dials and accepts, each upgrade with its
// election, role, security, muxer, inlining and stage durations; opens,
// identify results, duplicates resolved, closes with their reason, dial
// failures, refused inbound connections; listen logs the opens, identify
// results, closes, duplicates and refusals without -v), and -metrics ADDR, a Prometheus endpoint at
// http://ADDR/metrics (internal/metrics; the README lists the metrics).
// listen, ping and perf take -key FILE, the host's identity, created if
// missing in a directory that must exist; demo's hosts are fresh each round.
//
// # Errors
//
// Usage errors (exit 2) read "concord: CMD: what is wrong (see 'concord CMD
// -h')", each value quoted once, e.g. -rounds "abc": want an integer. A
// failed dial names the peer once in its short form (12*qXxfAr), then each
// address with the stage it failed or was waiting in.
//
// # Exit codes
//
//	0    success
//	1    runtime failure; for demo, also any round that did not end with
//	     exactly one live connection on both ends, the same one; for ping,
//	     no ping answered; for interop, a listener reaching its timeout;
//	     for conformance, a case that failed
//	2    usage error (unknown command or flag, bad value, wrong arguments)
//	127  interop: the transport, security or muxer asked for is not one
//	     Concord has (quic-go's interop runner uses the same code)
//
// # Limits
//
// Only TCP is supported, over IPv4 and IPv6. -security tls works when the
// host offers TLS; otherwise the host's configuration error ends the command
// with exit code 1.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package main
