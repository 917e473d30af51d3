package faults

// The harness: peer processes (faults/peer) in network namespaces, driven
// over a Unix control socket (the protocol is documented in
// faults/peer/main.go and faults/peer/commands.go).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

const (
	// readyTimeout bounds a peer's start: exec, key, listener, control
	// connection.
	readyTimeout = 20 * time.Second
	// replyTimeout bounds the wait for any reply; the peer bounds each
	// command to 60 s.
	replyTimeout = 75 * time.Second
	// exitTimeout bounds a peer's graceful exit (its host's close) before
	// it is killed.
	exitTimeout = 10 * time.Second
)

// lab is what the scenarios share: the peer binary and a short directory
// for control sockets (a Unix socket path must fit in 108 bytes, which
// t.TempDir's names do not always).
type lab struct {
	bin string
	dir string

	mu   sync.Mutex
	n    int
	rows []*row
}

// newLab builds the peer program once for the whole suite.
func newLab(t *testing.T) *lab {
	t.Helper()
	dir, err := os.MkdirTemp("", "faults")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "peer")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/concordp2p/concord/faults/peer").CombinedOutput()
	if err != nil {
		t.Fatalf("building the peer program: %v\n%s", err, out)
	}
	return &lab{bin: bin, dir: dir}
}

// peerOpts are a peer process's flags; zero values leave the defaults.
type peerOpts struct {
	Name        string // for messages
	Port        int    // listen port at 0.0.0.0; 0: no listener
	Key         string // key file (created when missing); "": ephemeral key
	KeepAlive   time.Duration
	PingTimeout time.Duration
	WriteStall  time.Duration
	Handshake   time.Duration
	Backlog     int
	PerIP       int
	NoReuse     bool
}

func (o peerOpts) args() []string {
	a := []string{}
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
	return a
}

// event is a host event a peer reported.
type event struct {
	Event     string // opened, closed, duplicate
	At        int64  // unix ns
	Peer      string
	Seq       uint64
	Election  bool
	Direction string
	Reason    string
	Is        []string
	Survivor  uint64
	Rule      string
	Immediate bool
}

func (e event) time() time.Time { return time.Unix(0, e.At) }

// cmdErr is the error part of every reply.
type cmdErr struct {
	Err string   `json:"err"`
	Is  []string `json:"is"`
}

func (e cmdErr) is(kind string) bool { return slices.Contains(e.Is, kind) }

// proc is one peer process.
type proc struct {
	t    *testing.T
	name string
	ns   *netlab.Host
	cmd  *exec.Cmd
	wait func() error

	ID   peer.ID
	Inc  string
	Addr ma.Multiaddr // its listen address as the other namespace dials it

	ctl        net.Conn
	stderrPath string
	// stop closes the control connection (the peer closes its host and
	// exits) and waits for the exit, killing the process after
	// exitTimeout. It runs at the end of the test if not before.
	stop       func()
	readerDone chan struct{}

	mu      sync.Mutex
	next    int
	pending map[int]chan json.RawMessage
	events  []event
	changed chan struct{} // closed and replaced when events grow
}

// start starts a peer process in ns and waits until it is ready. It ends
// when the test does: control connection closed (the peer closes its host
// and exits), then SIGKILL by netlab if it has not exited.
func (l *lab) start(t *testing.T, ns *netlab.Host, o peerOpts) *proc {
	t.Helper()
	l.mu.Lock()
	l.n++
	n := l.n
	l.mu.Unlock()
	sock := filepath.Join(l.dir, fmt.Sprintf("c%d.sock", n))
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p := &proc{
		t: t, name: o.Name, ns: ns,
		stderrPath: filepath.Join(l.dir, fmt.Sprintf("p%d.stderr", n)),
		pending:    make(map[int]chan json.RawMessage),
		changed:    make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	if p.name == "" {
		p.name = fmt.Sprintf("peer%d", n)
	}
	args := append([]string{"-ctl=" + sock, "-stderr=" + p.stderrPath}, o.args()...)
	p.cmd, p.wait, err = ns.Start(l.bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = p.wait(); close(exited) }()
	_ = ln.SetDeadline(time.Now().Add(readyTimeout))
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		p.ctl = c
		accepted <- err
	}()
	select {
	case err = <-accepted:
	case <-exited:
		ln.Close()
		<-accepted
		t.Fatalf("%s exited before connecting: %v\n%s", p.name, p.cmd.ProcessState, p.stderr())
	}
	if err != nil {
		t.Fatalf("%s did not connect its control socket within %v: %v\n%s", p.name, readyTimeout, err, p.stderr())
	}
	p.stop = sync.OnceFunc(func() {
		_ = p.ctl.Close()
		<-p.readerDone
		select {
		case <-exited:
		case <-time.After(exitTimeout):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-exited
		}
		if b, _ := os.ReadFile(p.stderrPath); len(b) > 0 && !t.Failed() && strings.Contains(string(b), "DATA RACE") {
			t.Errorf("%s reported a race:\n%s", p.name, b)
		}
	})
	t.Cleanup(p.stop)
	br := bufio.NewReader(p.ctl)
	_ = p.ctl.SetReadDeadline(time.Now().Add(readyTimeout))
	line, err := br.ReadBytes('\n')
	_ = p.ctl.SetReadDeadline(time.Time{})
	var ready struct {
		cmdErr
		ID  string
		Inc string
		PID int
	}
	if err == nil {
		err = json.Unmarshal(line, &ready)
	}
	if err != nil || ready.Err != "" {
		close(p.readerDone)
		t.Fatalf("%s: ready line %q: %v %s\n%s", p.name, line, err, ready.Err, p.stderr())
	}
	if ready.PID != p.cmd.Process.Pid {
		// `ip netns exec` execs the program in place; the pid netlab
		// kills must be the peer's.
		close(p.readerDone)
		t.Fatalf("%s reports pid %d, started as %d", p.name, ready.PID, p.cmd.Process.Pid)
	}
	if p.ID, err = peer.Decode(ready.ID); err != nil {
		close(p.readerDone)
		t.Fatal(err)
	}
	p.Inc = ready.Inc
	if o.Port > 0 {
		p.Addr = ma.StringCast(fmt.Sprintf("/ip4/%s/tcp/%d", ns.Addr, o.Port))
	}
	go p.read(br)
	return p
}

// read dispatches the peer's lines until the control connection ends.
func (p *proc) read(br *bufio.Reader) {
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
			var e event
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

func (p *proc) stderr() string {
	b, _ := os.ReadFile(p.stderrPath)
	return string(b)
}

// send sends a command and returns the channel its reply arrives on.
func (p *proc) send(verb string, args ...any) (<-chan json.RawMessage, error) {
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
		return nil, fmt.Errorf("%s: sending %s: %w", p.name, verb, err)
	}
	return ch, nil
}

// await decodes the reply from ch into out.
func (p *proc) await(ch <-chan json.RawMessage, out any) error {
	select {
	case line, ok := <-ch:
		if !ok {
			return fmt.Errorf("%s: control connection ended before the reply\n%s", p.name, p.stderr())
		}
		return json.Unmarshal(line, out)
	case <-time.After(replyTimeout):
		return fmt.Errorf("%s: no reply within %v", p.name, replyTimeout)
	}
}

// call runs a command and decodes its reply into out (which may be nil).
// Only a broken harness fails the test here; the command's own error is in
// out's cmdErr.
func (p *proc) call(out any, verb string, args ...any) {
	p.t.Helper()
	ch, err := p.send(verb, args...)
	if err == nil {
		if out == nil {
			out = &cmdErr{}
		}
		err = p.await(ch, out)
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

// must runs a command and fails the test if it reports an error.
func (p *proc) must(out any, verb string, args ...any) {
	p.t.Helper()
	var e cmdErr
	ch, err := p.send(verb, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	var raw json.RawMessage
	if err := p.await(ch, &raw); err != nil {
		p.t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		p.t.Fatal(err)
	}
	if e.Err != "" {
		p.t.Fatalf("%s: %s %v: %s (%v)", p.name, verb, args, e.Err, e.Is)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.t.Fatal(err)
		}
	}
}

// waitEvent waits up to d for an event, past or future, that match
// accepts.
func (p *proc) waitEvent(d time.Duration, match func(event) bool) (event, bool) {
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
			return event{}, false
		case <-p.readerDone:
			return event{}, false
		}
	}
}

// signal sends sig to the peer process by its pid.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: %v: %v", p.name, sig, err)
	}
}

// kill ends the process with SIGKILL and reaps it.
func (p *proc) kill() {
	p.t.Helper()
	p.signal(syscall.SIGKILL)
	_ = p.wait()
}

// fds counts the process's open descriptors from outside.
func (p *proc) fds() int {
	p.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	return len(ents)
}

// Replies.

type connectReply struct {
	cmdErr
	Began   int64
	Connect time.Duration
	First   time.Duration
	Seq     uint64
}

type echoReply struct {
	cmdErr
	Dur time.Duration
	Seq uint64
}

type connState struct {
	Seq       uint64
	Rseq      uint64
	Rinc      string
	Draining  bool
	Closed    bool
	Direction string
	Role      string
	Election  bool
	Local     string
	Remote    string
}

type stateReply struct {
	cmdErr
	Conns     []connState
	Listeners []upgrader.ListenerStats
}

func (s stateReply) accepted() uint64 {
	var n uint64
	for _, l := range s.Listeners {
		n += l.Accepted
	}
	return n
}

type stallReply struct {
	cmdErr
	Written int
	Dur     time.Duration
	Idle    time.Duration
	Seq     uint64
}

type msgsReply struct {
	cmdErr
	Acked  []uint64
	Failed int
	Errs   []string
	Dur    time.Duration
}

type idsReply struct {
	cmdErr
	IDs      map[string]int `json:"ids"`
	Accepted int
}

type rawSendReply struct {
	cmdErr
	OK     []uint64 `json:"ok"`
	Failed int
	Dur    time.Duration
}

type floodReply struct {
	cmdErr
	Attempts, Connected, ConnectFailed, Refused, Held, Dropped int
	RefusedP50, RefusedP99, RefusedMax                         time.Duration
	Dur                                                        time.Duration
}

type usageReply struct {
	cmdErr
	Fds, Goroutines int
}

// converged waits up to d until a and b each hold exactly one connection
// to the other, the same one (each side's sequence number is the one the
// other's hello announced, with the right incarnations), not draining.
func converged(a, b *proc, d time.Duration) (sa, sb stateReply, err error) {
	var last string
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		a.must(&sa, "state", b.ID)
		b.must(&sb, "state", a.ID)
		switch {
		case len(sa.Conns) != 1 || len(sb.Conns) != 1:
			last = fmt.Sprintf("%s holds %d connections, %s holds %d", a.name, len(sa.Conns), b.name, len(sb.Conns))
		case sa.Conns[0].Rinc == "" || sb.Conns[0].Rinc == "":
			last = "hello not exchanged yet"
		case sa.Conns[0].Seq != sb.Conns[0].Rseq || sb.Conns[0].Seq != sa.Conns[0].Rseq ||
			sa.Conns[0].Rinc != b.Inc || sb.Conns[0].Rinc != a.Inc:
			last = fmt.Sprintf("different connections: %s seq %d (peer says %d), %s seq %d (peer says %d)",
				a.name, sa.Conns[0].Seq, sb.Conns[0].Rseq, b.name, sb.Conns[0].Seq, sa.Conns[0].Rseq)
		case sa.Conns[0].Draining || sb.Conns[0].Draining || sa.Conns[0].Closed || sb.Conns[0].Closed:
			last = "the connection is draining or closed"
		default:
			return sa, sb, nil
		}
		if time.Now().After(deadline) {
			return sa, sb, fmt.Errorf("not converged within %v: %s", d, last)
		}
	}
}

// sysctl sets a per-namespace sysctl.
func sysctl(t *testing.T, h *netlab.Host, kv string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := h.Run(ctx, "sysctl", "-w", kv); err != nil {
		t.Fatalf("sysctl %s in %s: %v\n%s", kv, h.Name, err, out)
	}
}

// rule adds an iptables rule in h for the rest of the test and returns its
// removal.
// dropBareSYNs drops outgoing bare SYNs in both namespaces of pair and
// returns the function that removes the rules.
func dropBareSYNs(t *testing.T, pair *netlab.Pair) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rm, err := pair.DropBareSYNs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := rm(); err != nil {
			t.Fatalf("removing the SYN rules: %v", err)
		}
	}
}

func rule(t *testing.T, h *netlab.Host, chain string, spec ...string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rm, err := h.AddRule(ctx, netlab.Rule{Chain: chain, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := rm(); err != nil {
			t.Fatalf("removing rule %v: %v", spec, err)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func maxDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// ms formats a duration in milliseconds with one decimal.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}
