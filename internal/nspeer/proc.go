package nspeer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/peer"
)

const (
	// readyTimeout bounds a peer's start: exec, key, listener, control
	// connection.
	readyTimeout = 20 * time.Second
	// replyTimeout bounds the wait for any reply; the program bounds each
	// command by 60 s.
	replyTimeout = 75 * time.Second
	// exitTimeout bounds a peer's graceful exit (its host's close) before
	// it is killed.
	exitTimeout = 10 * time.Second
)

// Options are a peer's flags; a zero field leaves the program's default.
type Options struct {
	Name        string        // for messages; "" names it peerN
	Port        int           // listen port at 0.0.0.0; 0: no listener
	Key         string        // key file, created when missing; "": an ephemeral key
	KeepAlive   time.Duration // yamux keepalive interval
	PingTimeout time.Duration // yamux ping timeout
	WriteStall  time.Duration // yamux write stall timeout
	Handshake   time.Duration // the host's handshake timeout
	Backlog     int           // TCP listen backlog
	PerIP       int           // MaxInboundUpgradesPerIP
	NoReuse     bool          // tcp.Config.DisableReuse: dial from ephemeral ports
	BackoffBase time.Duration // host.Config.BackoffBase
	// Args are further flags, passed after the others as they are: for a
	// program with flags of its own (the interop module's go-libp2p peer
	// takes -transport).
	Args []string
}

func (o Options) args() []string {
	var a []string
	if o.Port > 0 {
		a = append(a, fmt.Sprintf("-listen=%d", o.Port))
	}
	if o.Key != "" {
		a = append(a, "-key="+o.Key)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"keepalive", o.KeepAlive}, {"pingtimeout", o.PingTimeout}, {"writestall", o.WriteStall}, {"handshake", o.Handshake}} {
		if d.v != 0 {
			a = append(a, fmt.Sprintf("-%s=%v", d.flag, d.v))
		}
	}
	if o.Backlog != 0 {
		a = append(a, fmt.Sprintf("-backlog=%d", o.Backlog))
	}
	if o.PerIP != 0 {
		a = append(a, fmt.Sprintf("-perip=%d", o.PerIP))
	}
	if o.NoReuse {
		a = append(a, "-noreuse")
	}
	if o.BackoffBase != 0 {
		a = append(a, fmt.Sprintf("-backoff=%v", o.BackoffBase))
	}
	return append(a, o.Args...)
}

// Proc is one running peer process. Its methods may be called from any
// goroutine of the test that started it.
type Proc struct {
	Name string       // Options.Name, or peerN
	ID   peer.ID      // the host's identity
	Inc  string       // the host's incarnation
	Addr ma.Multiaddr // its listen address as the other namespace dials it; nil without a listener

	tb   testing.TB
	prog *Program
	ns   *netlab.Host
	opts Options

	cmd        *exec.Cmd
	wait       func() error
	exited     chan struct{} // closed once the process is reaped
	killed     atomic.Bool   // the test sent SIGKILL: its exit status says nothing
	ctl        net.Conn
	stderrPath string
	readerDone chan struct{} // closed when the control connection's reader ends
	stop       func()

	// Shared by Send, the reader and WaitEvent.
	mu      sync.Mutex
	next    int // the last command id sent
	pending map[int]chan json.RawMessage
	events  []Event
	changed chan struct{} // closed and replaced when events grow
}

// Start starts a peer process in ns and waits until its host is ready. The
// process ends when tb does (Stop), if not before.
func (prog *Program) Start(tb testing.TB, ns *netlab.Host, o Options) *Proc {
	tb.Helper()
	sock, stderrPath, n := prog.files()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	p := &Proc{
		Name: o.Name,
		tb:   tb, prog: prog, ns: ns, opts: o,
		exited:     make(chan struct{}),
		stderrPath: stderrPath,
		readerDone: make(chan struct{}),
		pending:    make(map[int]chan json.RawMessage),
		changed:    make(chan struct{}),
	}
	if p.Name == "" {
		p.Name = fmt.Sprintf("peer%d", n)
	}
	p.cmd = ns.Command(prog.bin, append([]string{"-ctl=" + sock, "-stderr=" + stderrPath}, o.args()...)...)
	if prog.race {
		// A race-enabled binary sleeps 1 s at exit by default; its
		// races still show, in stderr and as exit status 66.
		p.cmd.Env = append(os.Environ(), "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	if p.wait, err = ns.StartCommand(p.cmd); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = p.wait(); close(p.exited) }()

	_ = ln.SetDeadline(time.Now().Add(readyTimeout))
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		p.ctl = c
		accepted <- err
	}()
	select {
	case err = <-accepted:
	case <-p.exited:
		ln.Close()
		<-accepted
		tb.Fatalf("%s exited before connecting: %v\n%s", p.Name, p.cmd.ProcessState, p.Stderr())
	}
	if err != nil {
		tb.Fatalf("%s did not connect its control socket within %v: %v\n%s", p.Name, readyTimeout, err, p.Stderr())
	}
	p.stop = sync.OnceFunc(p.end)
	tb.Cleanup(p.stop)

	br := bufio.NewReader(p.ctl)
	_ = p.ctl.SetReadDeadline(time.Now().Add(readyTimeout))
	line, err := br.ReadBytes('\n')
	_ = p.ctl.SetReadDeadline(time.Time{})
	var ready struct {
		Result
		ID  string
		Inc string
		PID int
	}
	if err == nil {
		err = json.Unmarshal(line, &ready)
	}
	if err != nil || ready.Err != "" {
		close(p.readerDone)
		tb.Fatalf("%s: ready line %q: %v %s\n%s", p.Name, line, err, ready.Err, p.Stderr())
	}
	if ready.PID != p.cmd.Process.Pid {
		// `ip netns exec` execs the program in place; the pid that
		// Signal and netlab's cleanup use must be the peer's.
		close(p.readerDone)
		tb.Fatalf("%s reports pid %d, started as %d", p.Name, ready.PID, p.cmd.Process.Pid)
	}
	if p.ID, err = peer.Decode(ready.ID); err != nil {
		close(p.readerDone)
		tb.Fatal(err)
	}
	p.Inc = ready.Inc
	if o.Port > 0 {
		p.Addr = ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", ns.Addr, o.Port))
	}
	go p.read(br)
	return p
}

// Stop ends the process: it closes the control connection (the peer closes
// its host and exits) and waits for the exit, killing the process after
// exitTimeout. It fails the test if the process reported a data race, or,
// unless the test killed it, exited with an error or had to be killed. It
// runs at the end of the test if not called before; later calls do nothing.
func (p *Proc) Stop() { p.stop() }

func (p *Proc) end() {
	_ = p.ctl.Close()
	<-p.readerDone
	forced := false
	select {
	case <-p.exited:
	case <-time.After(exitTimeout):
		forced = true
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	err := p.wait()
	stderr := p.Stderr()
	switch {
	case p.tb.Failed():
	case strings.Contains(stderr, "DATA RACE"):
		p.tb.Errorf("%s reported a race:\n%s", p.Name, stderr)
	case p.killed.Load():
	case forced:
		p.tb.Errorf("%s did not exit within %v of its control connection closing; killed\n%s", p.Name, exitTimeout, stderr)
	case err != nil:
		p.tb.Errorf("%s: %v\n%s", p.Name, err, stderr)
	}
}

// read dispatches the peer's lines until the control connection ends.
func (p *Proc) read(br *bufio.Reader) {
	defer close(p.readerDone)
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			p.mu.Lock()
			for id, ch := range p.pending {
				close(ch)
				delete(p.pending, id)
			}
			p.mu.Unlock()
			return
		}
		var head struct {
			Kind string
			Cmd  int
		}
		if json.Unmarshal(line, &head) != nil {
			continue
		}
		switch head.Kind {
		case "reply":
			p.mu.Lock()
			ch := p.pending[head.Cmd]
			delete(p.pending, head.Cmd)
			p.mu.Unlock()
			if ch != nil {
				ch <- line
			}
		case "event":
			var e Event
			if json.Unmarshal(line, &e) == nil {
				p.mu.Lock()
				p.events = append(p.events, e)
				close(p.changed)
				p.changed = make(chan struct{})
				p.mu.Unlock()
			}
		}
	}
}

// Stderr returns what the process wrote to its standard error so far:
// panics, race reports.
func (p *Proc) Stderr() string {
	b, _ := os.ReadFile(p.stderrPath)
	return string(b)
}

// Pending is a command sent with Send whose reply has not been read.
type Pending struct {
	p    *Proc
	verb string
	ch   <-chan json.RawMessage
}

// Send sends a command and returns at once; Await reads its reply.
// Arguments are formatted with fmt.Sprint.
func (p *Proc) Send(verb string, args ...any) (Pending, error) {
	p.mu.Lock()
	p.next++
	id := p.next
	ch := make(chan json.RawMessage, 1)
	p.pending[id] = ch
	p.mu.Unlock()
	parts := []string{fmt.Sprint(id), verb}
	for _, a := range args {
		parts = append(parts, fmt.Sprint(a))
	}
	if _, err := fmt.Fprintln(p.ctl, strings.Join(parts, " ")); err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return Pending{}, fmt.Errorf("%s: sending %s: %w", p.Name, verb, err)
	}
	return Pending{p: p, verb: verb, ch: ch}, nil
}

// Await waits for the reply, bounded by replyTimeout, and decodes it into
// out. Its error is the harness's (no reply, an undecodable one); the
// command's own error is in out's Result.
func (c Pending) Await(out any) error {
	select {
	case line, ok := <-c.ch:
		if !ok {
			return fmt.Errorf("%s: control connection ended before the reply to %s\n%s", c.p.Name, c.verb, c.p.Stderr())
		}
		if err := json.Unmarshal(line, out); err != nil {
			return fmt.Errorf("%s: reply to %s: %w", c.p.Name, c.verb, err)
		}
		return nil
	case <-time.After(replyTimeout):
		return fmt.Errorf("%s: no reply to %s within %v", c.p.Name, c.verb, replyTimeout)
	}
}

// Call runs a command and decodes its reply into out (which may be nil).
// Only a broken harness fails the test here; the command's own error is in
// out's Result.
func (p *Proc) Call(out any, verb string, args ...any) {
	p.tb.Helper()
	c, err := p.Send(verb, args...)
	if err == nil {
		if out == nil {
			out = &Result{}
		}
		err = c.Await(out)
	}
	if err != nil {
		p.tb.Fatal(err)
	}
}

// Must runs a command, fails the test if it reports an error, and decodes
// its reply into out (which may be nil).
func (p *Proc) Must(out any, verb string, args ...any) {
	p.tb.Helper()
	var raw json.RawMessage
	c, err := p.Send(verb, args...)
	if err == nil {
		err = c.Await(&raw)
	}
	if err != nil {
		p.tb.Fatal(err)
	}
	var r Result
	if err := json.Unmarshal(raw, &r); err != nil {
		p.tb.Fatal(err)
	}
	if r.Err != "" {
		p.tb.Fatalf("%s: %s %v: %s %v", p.Name, verb, args, r.Err, r.Is)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.tb.Fatal(err)
		}
	}
}

// WaitEvent waits up to d for an event, past or future, that match
// accepts. It reports false at the deadline or when the control connection
// has ended.
func (p *Proc) WaitEvent(d time.Duration, match func(Event) bool) (Event, bool) {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	seen := 0
	for {
		p.mu.Lock()
		evs, changed := p.events[seen:], p.changed
		seen = len(p.events)
		p.mu.Unlock()
		for _, e := range evs {
			if match(e) {
				return e, true
			}
		}
		select {
		case <-changed:
		case <-deadline.C:
			return Event{}, false
		case <-p.readerDone:
			return Event{}, false
		}
	}
}

// Signal sends sig to the process by its pid. For SIGSTOP it returns only
// once the kernel reports the process stopped (state T in /proc), bounded
// by stopTimeout: kill(2) returns when the signal is queued, and a test
// that acts on a frozen peer right after must not race its last steps.
func (p *Proc) Signal(sig syscall.Signal) {
	p.tb.Helper()
	if sig == syscall.SIGKILL {
		p.killed.Store(true)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.tb.Fatalf("%s: %v: %v", p.Name, sig, err)
	}
	if sig == syscall.SIGSTOP {
		if err := waitStopped(p.cmd.Process.Pid, stopTimeout); err != nil {
			p.tb.Fatalf("%s: SIGSTOP: %v", p.Name, err)
		}
	}
}

// stopTimeout bounds the wait for a SIGSTOPped process to stop.
const stopTimeout = 2 * time.Second

// waitStopped polls /proc/PID/stat until the process's state is T
// (stopped by a signal), for at most d.
func waitStopped(pid int, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		state, err := procState(pid)
		if err != nil {
			return err
		}
		if state == 'T' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pid %d not stopped after %v (state %c)", pid, d, state)
		}
		time.Sleep(time.Millisecond)
	}
}

// procState reads the state letter of /proc/PID/stat: the field after the
// parenthesised command name, which may itself hold spaces or ')'.
func procState(pid int) (byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, b)
	}
	return b[i+2], nil
}

// Kill ends the process with SIGKILL, as kill -9 would, and reaps it. Its
// host closes nothing: the kernel closes its sockets.
func (p *Proc) Kill() {
	p.tb.Helper()
	p.Signal(syscall.SIGKILL)
	<-p.exited
}

// Restart starts the program again in the same namespace with the same
// options (so the same key file, hence identity, and the same listen port),
// named name, and returns the new process. A process that is still running
// is killed first (SIGKILL) and stopped.
func (p *Proc) Restart(name string) *Proc {
	p.tb.Helper()
	select {
	case <-p.exited:
	default:
		p.Kill()
	}
	p.Stop()
	o := p.opts
	o.Name = name
	return p.prog.Start(p.tb, p.ns, o)
}

// FDs counts the process's open descriptors from outside (/proc).
func (p *Proc) FDs() int {
	p.tb.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		p.tb.Fatal(err)
	}
	return len(ents)
}
