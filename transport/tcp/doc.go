// Package tcp is Concord's TCP transport: it listens, dials and hands raw
// connections to the upgrader (simopen, security, muxer). It is the lowest
// layer that touches sockets; it knows nothing of peers or protocols.
//
// # Port reuse and simultaneous open
//
// Listeners are opened with SO_REUSEADDR and SO_REUSEPORT (through
// github.com/libp2p/go-reuseport), and Dial binds its socket to the port of
// one of the Transport's own listeners before connecting. The listener is
// chosen by the target's family (IPv4 or IPv6) and kind:
//
//   - loopback target: a loopback listener if there is one, else an
//     unspecified-address listener (0.0.0.0 or ::);
//   - any other target: an unspecified-address listener.
//
// Listeners bound to other specific addresses are not used. When no listener
// matches, Dial uses an ephemeral port (ConnInfo.FromListenPort is false).
//
// Dialing from the listen port makes the connection's source address the
// peer's view of this node's listen address, and lets two peers that dial
// each other at the same moment meet in a TCP simultaneous open (RFC 9293,
// 3.5): one connection on which both sides called connect and both have
// Direction DirOutbound. Deciding who leads after that is the job of the
// simopen package, not of this one.
//
// A second connection between the same two ports is impossible while the
// first exists: the kernel refuses the 4-tuple with EADDRNOTAVAIL (or
// EADDRINUSE at bind). Dial then retries once from an ephemeral port and
// says so in ConnInfo.Fallback and ConnInfo.FallbackCause. A 4-tuple in
// TIME-WAIT on this side (this side closed first) is refused the same way
// only without TCP timestamps; with them (Linux's default) the kernel lets
// a socket bound to the port take the TIME-WAIT over, and the dial goes from
// the listen port again (TestDialAfterTimeWait measures both).
// The same happens when the socket connected to itself (ErrSelfConnect): a
// dial from an unspecified listener's port to this host's own address and
// that port. Dials to a loopback or the listener's own address on the listen
// port go from an ephemeral port at once. Config.DisableReuse turns port
// reuse off altogether.
//
// # Port ownership
//
// SO_REUSEPORT is there for dialing from the listen port, not for splitting
// its traffic: on Linux it would also let a second listener, of any process
// of the same user, bind the port and take a share of the inbound
// connections. So a listen port is owned (ARCHITECTURE.md decision 7):
// Listen fails with ErrPortInUse when another socket, of any process or of
// this one, already listens on the port at the same address or at an
// overlapping wildcard (0.0.0.0 or :: on either side), unless
// Config.SharePort asks for sharing.
//
// The check binds a probe socket to the address with SO_REUSEADDR and
// without SO_REUSEPORT, closes it without listening, and only then opens
// the listener. Linux's bind rules make the probe fail exactly when the
// port has a LISTEN socket: two sockets that both have SO_REUSEADDR may
// share a port as long as the existing one is not listening, and without
// SO_REUSEPORT on the probe a listener always conflicts. Connections that a
// previous listener on the port dialed or accepted (Concord and the net
// package set SO_REUSEADDR on both, and accepted sockets inherit it),
// established or in TIME-WAIT, whichever process holds them (a previous
// incarnation still being killed, say), do not stop a restarted node from
// listening again at once. An IPv6 probe
// is IPv6-only like the listener, so an IPv4 and an IPv6 listener may share
// a port number. Port 0 needs no probe (the kernel picks a port no socket
// holds), and neither does DisableReuse (without SO_REUSEPORT the kernel
// refuses a listened port itself; that refusal wraps ErrPortInUse too).
// TestListenPortOwned, TestListenWhileConnectionsOnPort and
// TestListenWhileTimeWaitOnPort check each case; cmd/concord's TestBinary
// runs two processes on one port.
//
// The probe and the listen are two steps. Within one process they run under
// one lock, but two processes that probe the same free port at the same
// instant, both before either listens, can both succeed and share it. The
// check stops a second node started on a busy port; it is not a lock
// against a racing one.
//
// # Defaults
//
// Every Config field's zero value is a default:
//
//   - connect timeout 5 s for a whole Dial (the ctx deadline applies too);
//   - TCP_NODELAY on every connection, dialed or accepted;
//   - SO_KEEPALIVE with 15 s idle time and 15 s probe interval;
//   - TCP_USER_TIMEOUT 20 s: data (or keepalive probes) unacknowledged for
//     20 s ends the connection, instead of TCP's ~15 minutes of
//     retransmissions. With both defaults, a peer that vanishes silently
//     from an idle connection is detected after about 35 s (15 s idle, then
//     the user timeout runs out with the first probe unanswered); the muxer's
//     own keepalive is expected to detect it sooner;
//   - the listen backlog of the system (net.core.somaxconn);
//   - graceful close: Close sends FIN; SO_LINGER is never set.
//
// # Cancellation
//
// ctx bounds Dial: cancelling it aborts the connect (the error wraps
// context.Cause(ctx)), and its deadline, if earlier than the connect
// timeout, is the timeout (the error wraps ErrDialTimeout). ctx bounds only
// the set-up of Listen. Once returned, connections and listeners do not
// depend on any context; close them.
//
// # Errors
//
// Dial returns *DialError and Listen *ListenError, each naming the address;
// conditions are sentinels checked with errors.Is: ErrUnsupportedAddr (not
// /ip4|ip6/<address>/tcp/<port>), ErrDialTimeout (DialError.Timeout reports
// it too), ErrPortInUse (Listen: the port has another listener; it wraps
// syscall.EADDRINUSE as well); kernel errors are wrapped unchanged (errors.Is(err,
// syscall.ECONNREFUSED) works).
//
// # Tests
//
// TestSimultaneousOpen reproduces a real TCP simultaneous open between two
// network namespaces 20 times (root only; skipped with the reason otherwise,
// failed under CI=true):
//
//	go test -run TestSimultaneousOpen -v ./transport/tcp/
//
// # Network namespaces
//
// Dial and Listen create their sockets on the calling goroutine, so tests
// can run them on a thread locked into a network namespace
// (internal/netlab).
//
// # Limits
//
// TCP_USER_TIMEOUT is Linux-only; elsewhere Config.UserTimeout is ignored.
// Config.ListenBacklog is applied by calling listen(2) a second time on the
// listening socket (the net package always passes somaxconn and has no
// setting), which works on Unix systems; elsewhere a non-zero backlog makes
// Listen fail. SO_REUSEPORT semantics differ between systems (on Linux two
// listeners on one port share incoming connections); the simultaneous-open
// behaviour is tested on Linux only. The port-ownership probe relies on
// Linux's bind rules and runs on Linux only: elsewhere Listen behaves as
// with Config.SharePort and the system's rules decide. An IPv6 listener is
// IPv6-only; listen on both families to serve both.
//
// ARCHITECTURE.md (repository root) places this package in the pipeline
// and the layering.
package tcp
