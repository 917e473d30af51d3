package host

// The helper process that runs one Host inside a network namespace.
//
// netlab.Host.Do puts only one goroutine in a namespace, but a Host dials
// and accepts on goroutines of its own, so a Host started under Do would
// dial from the root namespace. The netns tests therefore run each Host in
// a child process that lives in the namespace as a whole: the test binary
// itself, re-executed with `ip netns exec NS os.Args[0]
// -test.run=^TestNetnsHelperProcess$` and the environment variable
// netnsHelperEnv holding its configuration (the os/exec "helper process"
// pattern). The parent sends one command per line on the child's stdin and
// reads JSON lines on its stdout: replies ("@r ") in command order and
// events ("@e ") whenever the host reports one. Closing stdin ends the
// child, which closes its host first.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/peer"
)

// netnsHelperEnv carries a child's helperConfig as JSON; its presence is
// what makes TestNetnsHelperProcess act.
const netnsHelperEnv = "CONCORD_HOST_NETNS_HELPER"

const (
	replyPrefix = "@r "
	eventPrefix = "@e "
	// childReplyTimeout bounds the wait for any one reply; the slowest
	// command is a Connect over a dropped-SYN link (~1 s RTO, plus the
	// handshake on a loaded machine).
	childReplyTimeout = 20 * time.Second
)

// helperConfig configures the Host of a helper process.
type helperConfig struct {
	Port        int           // listen port on 0.0.0.0
	KeepAlive   time.Duration // yamux.Config.KeepAliveInterval; 0: default
	PingTimeout time.Duration // yamux.Config.PingTimeout; 0: default
}

// childConn describes one connection of a child's table.
type childConn struct {
	Seq       uint64
	RemoteInc string // the peer's incarnation from its hello, "" without
	RemoteSeq uint64 // the peer's sequence number from its hello
	Draining  bool
	Closed    bool
	Direction string
	Role      string
	Election  bool // the connection went through a simopen election
	Local     string
	Remote    string
}

// childReply is a helper process's answer to one command.
type childReply struct {
	Err string `json:",omitempty"`
	// Ready: the host's identity and incarnation.
	ID  string `json:",omitempty"`
	Inc string `json:",omitempty"`
	// connect and echo: when the command began (unix ns, to compare the
	// two children's start times) and how long its parts took.
	Began       int64         `json:",omitempty"`
	Connect     time.Duration `json:",omitempty"`
	FirstStream time.Duration `json:",omitempty"`
	// state: the connections to the peer and what the listeners accepted.
	Conns    []childConn `json:",omitempty"`
	Accepted uint64      `json:",omitempty"`
}

// childEvent is a host event as a helper process reports it.
type childEvent struct {
	Kind      string // "opened", "closed", "duplicate"
	At        int64  // unix ns when the observer saw it
	Seq       uint64
	Election  bool   `json:",omitempty"`
	Keepalive bool   `json:",omitempty"` // closed: errors.Is(Reason, muxer.ErrKeepaliveTimeout)
	Reason    string `json:",omitempty"`
	Rule      string `json:",omitempty"`
}

// TestNetnsHelperProcess is not a test: it is the body of the helper
// process the netns tests start. Without netnsHelperEnv it does nothing.
func TestNetnsHelperProcess(t *testing.T) {
	raw := os.Getenv(netnsHelperEnv)
	if raw == "" {
		return
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(raw), &hc); err != nil {
		t.Fatalf("helper config %q: %v", raw, err)
	}
	if err := runHelper(hc, os.Stdin, os.Stdout); err != nil {
		t.Fatal(err)
	}
}

// runHelper serves commands from in until EOF, writing replies and events
// to out.
func runHelper(hc helperConfig, in io.Reader, out io.Writer) error {
	var outMu sync.Mutex
	emit := func(prefix string, v any) {
		b, _ := json.Marshal(v)
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = fmt.Fprintf(out, "%s%s\n", prefix, b)
	}
	// The observer must not block; it only formats and writes a short
	// line to a pipe the parent always drains.
	observe := func(e Event) {
		ce := childEvent{At: time.Now().UnixNano()}
		switch e := e.(type) {
		case ConnOpened:
			ce.Kind, ce.Seq, ce.Election = "opened", e.Seq, e.Election != nil
		case ConnClosed:
			ce.Kind, ce.Seq = "closed", e.Seq
			ce.Keepalive = errors.Is(e.Reason, muxer.ErrKeepaliveTimeout)
			if e.Reason != nil {
				ce.Reason = e.Reason.Error()
			}
		case DuplicateResolved:
			ce.Kind, ce.Seq, ce.Rule = "duplicate", e.ClosedSeq, string(e.Rule)
		default:
			return
		}
		emit(eventPrefix, ce)
	}
	h, err := New(Config{
		ListenAddrs: []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", hc.Port))},
		Yamux:       yamux.Config{KeepAliveInterval: hc.KeepAlive, PingTimeout: hc.PingTimeout},
		Observer:    observe,
	})
	if err != nil {
		emit(replyPrefix, childReply{Err: err.Error()})
		return err
	}
	defer h.Close()
	h.SetStreamHandler("/test/echo", func(s *Stream) {
		defer s.Close()
		_, _ = io.Copy(s, s)
		_ = s.CloseWrite()
	})
	emit(replyPrefix, childReply{ID: h.ID().String(), Inc: h.Incarnation().String()})

	sc := bufio.NewScanner(in)
	for sc.Scan() {
		emit(replyPrefix, helperCommand(h, strings.Fields(sc.Text())))
	}
	return sc.Err()
}

// helperCommand runs one command:
//
//	connect PEER MULTIADDR   Connect, then one echo stream (time to first stream)
//	echo PEER MSG            one echo stream
//	state PEER               the connections to PEER
func helperCommand(h *Host, f []string) childReply {
	if len(f) < 2 {
		return childReply{Err: fmt.Sprintf("bad command %q", f)}
	}
	p, err := peer.Decode(f[1])
	if err != nil {
		return childReply{Err: err.Error()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	switch {
	case f[0] == "connect" && len(f) == 3:
		addr, err := ma.NewMultiaddr(f[2])
		if err != nil {
			return childReply{Err: err.Error()}
		}
		began := time.Now()
		r := childReply{Began: began.UnixNano()}
		if _, err := h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{addr}}); err != nil {
			r.Err = "connect: " + err.Error()
			return r
		}
		r.Connect = time.Since(began)
		if err := helperEcho(ctx, h, p, "first stream"); err != nil {
			r.Err = err.Error()
			return r
		}
		r.FirstStream = time.Since(began)
		return r
	case f[0] == "echo" && len(f) == 3:
		began := time.Now()
		if err := helperEcho(ctx, h, p, f[2]); err != nil {
			return childReply{Err: err.Error()}
		}
		return childReply{FirstStream: time.Since(began)}
	case f[0] == "state" && len(f) == 2:
		var r childReply
		for _, c := range h.Conns(p) {
			inc, seq, ok := c.RemoteHello()
			cc := childConn{
				Seq: c.Seq(), Draining: c.Draining(), Closed: c.IsClosed(),
				Direction: c.Direction().String(), Role: c.Role().String(),
				Election: c.Election() != nil,
				Local:    c.LocalMultiaddr().String(), Remote: c.RemoteMultiaddr().String(),
			}
			if ok {
				cc.RemoteInc, cc.RemoteSeq = inc.String(), seq
			}
			r.Conns = append(r.Conns, cc)
		}
		for _, s := range h.ListenerStats() {
			r.Accepted += s.Accepted
		}
		return r
	}
	return childReply{Err: fmt.Sprintf("bad command %q", f)}
}

func helperEcho(ctx context.Context, h *Host, p peer.ID, msg string) error {
	s, err := h.NewStream(ctx, p, "/test/echo")
	if err != nil {
		return fmt.Errorf("echo: NewStream: %w", err)
	}
	defer s.Close()
	if _, err := s.Write([]byte(msg)); err != nil {
		return fmt.Errorf("echo: write: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("echo: close write: %w", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != msg {
		return fmt.Errorf("echo = %q, %v; want %q", got, err, msg)
	}
	return nil
}

// netnsChild is the parent's handle on one helper process.
type netnsChild struct {
	t      *testing.T
	ns     *netlab.Host
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer // read only after the process ended
	// replies and events are filled by the stdout reader until EOF, when
	// done closes. other keeps the lines that are neither (test output of
	// the child) for failure messages.
	replies chan childReply
	events  chan childEvent
	done    chan struct{}
	otherMu sync.Mutex
	other   []string

	id   peer.ID
	inc  string
	addr ma.Multiaddr // where the other namespace dials it
	stop func()
}

// startChild starts a helper process with a host in ns and waits for it to
// report ready. The process ends at test cleanup if stop was not called.
func startChild(t *testing.T, ns *netlab.Host, hc helperConfig) *netnsChild {
	t.Helper()
	cfg, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	c := &netnsChild{
		t: t, ns: ns,
		replies: make(chan childReply, 16),
		events:  make(chan childEvent, 256),
		done:    make(chan struct{}),
		addr:    ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", ns.Addr, hc.Port)),
	}
	// netlab.Host.Start runs `ip netns exec` too, but gives no pipes; the
	// pipes are the helper's control channel, so the command is built here.
	c.cmd = exec.Command("ip", "netns", "exec", ns.Name, os.Args[0],
		"-test.run=^TestNetnsHelperProcess$", "-test.count=1", "-test.timeout=5m")
	// A race-enabled binary sleeps 1 s at exit by default; the child's
	// races still fail it (exit status 66, reported by stop).
	c.cmd.Env = append(os.Environ(), netnsHelperEnv+"="+string(cfg),
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	c.cmd.Stderr = &c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("starting the helper in %s: %v", ns.Name, err)
	}
	go c.read(stdout)
	c.stop = sync.OnceFunc(func() {
		_ = c.stdin.Close() // EOF: the child closes its host and exits
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		if err := c.cmd.Wait(); err != nil && !t.Failed() {
			t.Errorf("helper in %s: %v\n%s", ns.Name, err, c.output())
		}
	})
	t.Cleanup(c.stop)
	r := c.reply()
	if r.Err != "" {
		t.Fatalf("helper in %s: %s", ns.Name, r.Err)
	}
	if c.id, err = peer.Decode(r.ID); err != nil {
		t.Fatalf("helper in %s reported id %q: %v", ns.Name, r.ID, err)
	}
	c.inc = r.Inc
	return c
}

func (c *netnsChild) read(stdout io.Reader) {
	defer close(c.done)
	defer close(c.events)
	defer close(c.replies)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, replyPrefix):
			var r childReply
			if err := json.Unmarshal([]byte(line[len(replyPrefix):]), &r); err != nil {
				r.Err = fmt.Sprintf("bad reply %q: %v", line, err)
			}
			c.replies <- r
		case strings.HasPrefix(line, eventPrefix):
			var e childEvent
			if err := json.Unmarshal([]byte(line[len(eventPrefix):]), &e); err == nil {
				select {
				case c.events <- e:
				default: // nobody watches events in this test; drop
				}
			}
		default:
			c.otherMu.Lock()
			c.other = append(c.other, line)
			c.otherMu.Unlock()
		}
	}
}

// output is what the child printed besides replies and events, for
// failure messages (stderr only once it has exited).
func (c *netnsChild) output() string {
	c.otherMu.Lock()
	defer c.otherMu.Unlock()
	s := strings.Join(c.other, "\n")
	select {
	case <-c.done:
		s += "\n" + c.stderr.String()
	default:
	}
	return s
}

// send writes one command without waiting for its reply.
func (c *netnsChild) send(format string, args ...any) {
	c.t.Helper()
	if _, err := fmt.Fprintf(c.stdin, format+"\n", args...); err != nil {
		c.t.Fatalf("helper in %s: sending a command: %v", c.ns.Name, err)
	}
}

// reply waits for the next reply, bounded.
func (c *netnsChild) reply() childReply {
	c.t.Helper()
	select {
	case r, ok := <-c.replies:
		if !ok {
			c.t.Fatalf("helper in %s exited:\n%s", c.ns.Name, c.output())
		}
		return r
	case <-time.After(childReplyTimeout):
		c.t.Fatalf("helper in %s: no reply within %v:\n%s", c.ns.Name, childReplyTimeout, c.output())
	}
	return childReply{}
}

// call sends a command and returns its reply, failing the test on an error.
func (c *netnsChild) call(format string, args ...any) childReply {
	c.t.Helper()
	c.send(format, args...)
	r := c.reply()
	if r.Err != "" {
		c.t.Fatalf("helper in %s: %s: %s", c.ns.Name, fmt.Sprintf(format, args...), r.Err)
	}
	return r
}

// state returns the child's connections to the other child.
func (c *netnsChild) state(other *netnsChild) childReply {
	c.t.Helper()
	return c.call("state %s", other.id)
}

// netnsConverged waits up to 1 s until a and b each hold exactly one
// connection to the other and it is the same one (each side's sequence
// number is the one the other side's hello announced, and the incarnations
// match), not draining; it is converged for two processes.
func netnsConverged(a, b *netnsChild) (sa, sb childReply, err error) {
	var last string
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		sa, sb = a.state(b), b.state(a)
		switch {
		case len(sa.Conns) != 1 || len(sb.Conns) != 1:
			last = fmt.Sprintf("A holds %d conns, B holds %d", len(sa.Conns), len(sb.Conns))
		case sa.Conns[0].RemoteInc == "" || sb.Conns[0].RemoteInc == "":
			last = "hello not exchanged yet"
		case sa.Conns[0].Seq != sb.Conns[0].RemoteSeq || sb.Conns[0].Seq != sa.Conns[0].RemoteSeq ||
			sa.Conns[0].RemoteInc != b.inc || sb.Conns[0].RemoteInc != a.inc:
			last = fmt.Sprintf("different connections: A has seq %d (B says %d), B has seq %d (A says %d)",
				sa.Conns[0].Seq, sb.Conns[0].RemoteSeq, sb.Conns[0].Seq, sa.Conns[0].RemoteSeq)
		case sa.Conns[0].Draining || sb.Conns[0].Draining || sa.Conns[0].Closed || sb.Conns[0].Closed:
			last = "the connection is draining or closed"
		default:
			return sa, sb, nil
		}
		if time.Now().After(deadline) {
			return sa, sb, fmt.Errorf("not converged within 1s: %s", last)
		}
	}
}

// waitEvent waits up to d for an event of c that match accepts.
func (c *netnsChild) waitEvent(d time.Duration, match func(childEvent) bool) (childEvent, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-c.events:
			if !ok {
				return childEvent{}, false
			}
			if match(e) {
				return e, true
			}
		case <-timer.C:
			return childEvent{}, false
		}
	}
}
