package tcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/libp2p/go-reuseport"
	ma "github.com/multiformats/go-multiaddr"
)

// Transport listens and dials TCP. Its Dial binds the outgoing socket to the
// port of one of its own listeners so that two peers dialing each other can
// meet in a TCP simultaneous open; see the package documentation.
//
// A Transport is safe for concurrent use. It owns no goroutines; closing its
// listeners releases everything it holds.
type Transport struct {
	cfg Config // with defaults filled; never modified after New

	mu        sync.Mutex
	listeners []*Listener // open listeners, in the order they were opened

	// dialContext is net.Dialer.DialContext; tests replace it to run the
	// timeout logic under testing/synctest without real sockets.
	dialContext func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error)
}

// New returns a Transport with the given configuration; zero fields take
// their documented defaults.
func New(cfg Config) *Transport {
	return &Transport{
		cfg: cfg.withDefaults(),
		dialContext: func(ctx context.Context, d *net.Dialer, network, address string) (net.Conn, error) {
			return d.DialContext(ctx, network, address)
		},
	}
}

// Config returns the transport's configuration with the defaults filled in.
func (t *Transport) Config() Config { return t.cfg }

// Listen opens a listener on addr (/ip4|ip6/<address>/tcp/<port>; port 0
// picks a free port). Unless reuse is disabled the socket has SO_REUSEADDR
// and SO_REUSEPORT, and later dials of this Transport may use its port.
// An IPv6 listener accepts IPv6 only (IPV6_V6ONLY).
//
// The port is owned: if another socket (of any process, this one included)
// already listens on it at the same address or an overlapping wildcard,
// Listen fails with an error wrapping ErrPortInUse, unless Config.SharePort
// is set. Sockets left by an earlier listener on the port, connected or in
// TIME-WAIT, do not count: a restarted node listens again at once. The
// package documentation describes the check and its limits.
//
// ctx bounds only the setting up of the listener; cancelling it later does
// not close the listener.
func (t *Transport) Listen(ctx context.Context, addr ma.Multiaddr) (*Listener, error) {
	la, ipv6, err := ToTCPAddr(addr)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	if t.cfg.ListenBacklog < 0 {
		return nil, &ListenError{Addr: addr, Err: fmt.Errorf("negative ListenBacklog %d", t.cfg.ListenBacklog)}
	}
	nl, err := t.listen(ctx, la, ipv6)
	if err != nil {
		return nil, &ListenError{Addr: addr, Err: err}
	}
	tl := nl.(*net.TCPListener)
	if t.cfg.ListenBacklog > 0 {
		if err := setBacklog(tl, t.cfg.ListenBacklog); err != nil {
			tl.Close()
			return nil, &ListenError{Addr: addr, Err: err}
		}
	}
	bound := tl.Addr().(*net.TCPAddr)
	maddr, err := FromTCPAddr(bound)
	if err != nil {
		tl.Close()
		return nil, &ListenError{Addr: addr, Err: err}
	}
	l := &Listener{t: t, ln: tl, addr: bound, maddr: maddr, ipv6: ipv6}
	t.mu.Lock()
	t.listeners = append(t.listeners, l)
	t.mu.Unlock()
	return l, nil
}

// listenMu serialises the ownership check and the listen that follows it
// within this process, so that two Transports of one process cannot both
// pass the check for one port. Between processes the window remains (see
// the package documentation).
var listenMu sync.Mutex

// listen checks that the port is not owned by another listener (unless
// sharing is asked for) and opens the listening socket.
func (t *Transport) listen(ctx context.Context, la *net.TCPAddr, ipv6 bool) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1} // options are set per connection by setOptions
	if !t.cfg.DisableReuse {
		lc.Control = reuseport.Control
	}
	listenMu.Lock()
	defer listenMu.Unlock()
	// Port 0 needs no check: the kernel picks a port no socket holds.
	// Without SO_REUSEPORT the kernel itself refuses a port with a
	// listener.
	if la.Port != 0 && !t.cfg.DisableReuse && !t.cfg.SharePort {
		if err := probeListeners(la, ipv6); err != nil {
			return nil, err
		}
	}
	nl, err := lc.Listen(ctx, family(ipv6), la.String())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %w", ErrPortInUse, err)
		}
		return nil, err
	}
	return nl, nil
}

func (t *Transport) removeListener(l *Listener) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, x := range t.listeners {
		if x == l {
			t.listeners = append(t.listeners[:i], t.listeners[i+1:]...)
			return
		}
	}
}

// reuseAddr returns the local address a dial to raddr binds to, or nil for
// an ephemeral port: the port of the first-opened listener of the same
// family that is loopback (for a loopback target) or unspecified (0.0.0.0
// or ::). A loopback target may also use an unspecified listener, which
// listens on loopback too. Listeners bound to other specific addresses are
// never used.
func (t *Transport) reuseAddr(raddr *net.TCPAddr, ipv6 bool) *net.TCPAddr {
	if t.cfg.DisableReuse {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var unspecified *Listener
	for _, l := range t.listeners {
		if l.ipv6 != ipv6 {
			continue
		}
		if raddr.IP.IsLoopback() && l.addr.IP.IsLoopback() {
			return &net.TCPAddr{IP: l.addr.IP, Port: l.addr.Port}
		}
		if l.addr.IP.IsUnspecified() && unspecified == nil {
			unspecified = l
		}
	}
	if unspecified == nil {
		return nil
	}
	return &net.TCPAddr{IP: unspecified.addr.IP, Port: unspecified.addr.Port}
}

// Dial connects to raddr (/ip4|ip6/<address>/tcp/<port>).
//
// Unless reuse is disabled, and if the Transport has a matching listener
// (see the package documentation), the connection is made from that
// listener's port, so that when the remote peer dials this one at the same
// moment, TCP can produce a single simultaneously opened connection. If the
// kernel refuses the 4-tuple (EADDRINUSE or EADDRNOTAVAIL: a connection
// between the same two ports exists, or is in TIME-WAIT without TCP
// timestamps), or the socket
// connected to itself (ErrSelfConnect: the target was this host's own
// address and listen port), Dial retries once from an ephemeral port and
// records this in ConnInfo.Fallback. A dial to a loopback address, or to the
// listener's own address, with the listen port as target goes from an
// ephemeral port at once.
//
// The whole Dial is bounded by the connect timeout (Config.ConnectTimeout)
// and by ctx. Cancelling ctx aborts the connect; the error then wraps
// context.Cause(ctx). A timeout wraps ErrDialTimeout (and, if it was ctx's
// deadline, context.DeadlineExceeded too). Every error is a *DialError.
//
// Dial creates its sockets on the calling goroutine, so a caller may pin it
// to a thread in another network namespace.
func (t *Transport) Dial(ctx context.Context, raddr ma.Multiaddr) (*Conn, error) {
	ra, ipv6, err := ToTCPAddr(raddr)
	if err != nil {
		return nil, &DialError{Addr: raddr, Err: err}
	}
	if err := context.Cause(ctx); err != nil {
		return nil, &DialError{Addr: raddr, Err: err}
	}
	deadline := time.Now().Add(t.cfg.ConnectTimeout)
	dctx, cancel := context.WithDeadlineCause(ctx, deadline, ErrDialTimeout)
	defer cancel()

	info := ConnInfo{Direction: network.DirOutbound}
	if local := t.reuseAddr(ra, ipv6); local != nil && !obviouslySelf(local, ra) {
		c, err := t.connect(dctx, ipv6, local, ra)
		switch {
		case err == nil && isSelfConnect(c):
			c.Close()
			err = ErrSelfConnect
		case err == nil:
			info.FromListenPort = true
			return t.newConn(c, info, raddr)
		case dctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) || !(errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)):
			return nil, t.dialError(ctx, deadline, raddr, err)
		}
		info.Fallback = true
		info.FallbackCause = err
	}
	c, err := t.connect(dctx, ipv6, nil, ra)
	if err != nil {
		return nil, t.dialError(ctx, deadline, raddr, err)
	}
	return t.newConn(c, info, raddr)
}

// obviouslySelf reports whether a dial from local to remote would connect
// the socket to itself: same port, and the target is loopback or local's own
// address. A dial to one's own listen address must reach the listener, so it
// goes from an ephemeral port. Other self-targets (an unspecified listener
// dialed through one of the host's non-loopback addresses) are caught after
// the fact by isSelfConnect.
func obviouslySelf(local, remote *net.TCPAddr) bool {
	return local.Port == remote.Port && (remote.IP.IsLoopback() || local.IP.Equal(remote.IP))
}

// isSelfConnect reports whether c is connected to itself: TCP lets a socket
// that connects to its own address and port complete a simultaneous open
// with itself.
func isSelfConnect(c *net.TCPConn) bool {
	l, r := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	return l.Port == r.Port && l.IP.Equal(r.IP)
}

// connect makes one connection attempt, from local if it is not nil.
func (t *Transport) connect(ctx context.Context, ipv6 bool, local, remote *net.TCPAddr) (*net.TCPConn, error) {
	d := &net.Dialer{KeepAlive: -1} // options are set by setOptions
	if local != nil {
		d.LocalAddr = local
		d.Control = reuseport.Control
	}
	c, err := t.dialContext(ctx, d, family(ipv6), remote.String())
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("dialer returned %T, want *net.TCPConn", c)
	}
	return tc, nil
}

// dialError turns a failed attempt into a *DialError whose cause says why:
// the caller's cancellation, a timeout, or the kernel's error.
//
// The net package enforces a context deadline with a poller deadline of its
// own, which can fire a moment before the context's timer: the attempt then
// fails with os.ErrDeadlineExceeded while ctx.Err() is still nil. Such an
// error is a timeout all the same; whose deadline it was is decided by
// comparing the deadlines.
func (t *Transport) dialError(parent context.Context, connectDeadline time.Time, raddr ma.Multiaddr, err error) error {
	if perr := parent.Err(); perr != nil && !errors.Is(perr, context.DeadlineExceeded) {
		return &DialError{Addr: raddr, Err: context.Cause(parent)}
	}
	timedOut := !time.Now().Before(connectDeadline) || parent.Err() != nil ||
		errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
	if !timedOut {
		return &DialError{Addr: raddr, Err: err}
	}
	if pd, ok := parent.Deadline(); ok && !pd.After(connectDeadline) {
		return &DialError{Addr: raddr, Err: fmt.Errorf("%w: %w", ErrDialTimeout, context.DeadlineExceeded)}
	}
	return &DialError{Addr: raddr, Err: fmt.Errorf("%w after %v", ErrDialTimeout, t.cfg.ConnectTimeout)}
}

// newConn sets the socket options and wraps c. On failure it closes c.
func (t *Transport) newConn(c *net.TCPConn, info ConnInfo, dialed ma.Multiaddr) (*Conn, error) {
	conn, err := t.wrap(c, info)
	if err != nil {
		c.Close()
		return nil, &DialError{Addr: dialed, Err: err}
	}
	return conn, nil
}

func (t *Transport) wrap(c *net.TCPConn, info ConnInfo) (*Conn, error) {
	if err := t.setOptions(c); err != nil {
		return nil, err
	}
	var err error
	if info.Local, err = FromTCPAddr(c.LocalAddr().(*net.TCPAddr)); err != nil {
		return nil, fmt.Errorf("local address: %w", err)
	}
	if info.Remote, err = FromTCPAddr(c.RemoteAddr().(*net.TCPAddr)); err != nil {
		return nil, fmt.Errorf("remote address: %w", err)
	}
	return &Conn{TCPConn: c, info: info}, nil
}

// setOptions sets the per-connection socket options of the package doc.
func (t *Transport) setOptions(c *net.TCPConn) error {
	if err := c.SetNoDelay(true); err != nil {
		return fmt.Errorf("setting TCP_NODELAY: %w", err)
	}
	if p := t.cfg.KeepAlivePeriod; p > 0 {
		// Count -1 keeps the kernel's probe count; with TCP_USER_TIMEOUT
		// set, Linux ends the connection when the user timeout has passed
		// with probes unanswered, whatever the count.
		if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: p, Interval: p, Count: -1}); err != nil {
			return fmt.Errorf("setting SO_KEEPALIVE: %w", err)
		}
	} else if err := c.SetKeepAlive(false); err != nil {
		return fmt.Errorf("clearing SO_KEEPALIVE: %w", err)
	}
	if ut := t.cfg.UserTimeout; ut > 0 {
		if err := setUserTimeout(c, ut); err != nil {
			return fmt.Errorf("setting TCP_USER_TIMEOUT: %w", err)
		}
	}
	return nil
}

func family(ipv6 bool) string {
	if ipv6 {
		return "tcp6"
	}
	return "tcp4"
}
