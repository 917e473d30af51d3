package netlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenIn listens on addr inside h and returns the listener (usable from
// any goroutine afterwards).
func listenIn(t *testing.T, h *Host, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := h.Do(func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen in %s on %s: %v", h.Name, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialFrom dials addr over TCP from inside h; the conn closes when the test
// ends.
func dialFrom(t *testing.T, h *Host, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := h.Do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial from %s to %s: %v", h.Name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoOne echoes everything on the first connection ln accepts.
func echoOne(ln net.Listener) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	io.Copy(c, c)
}

func TestPairConnectivity(t *testing.T) {
	p := NewPair(t)
	for _, tc := range []struct {
		name string
		addr netip.Addr
	}{{"ipv4", p.B.Addr}, {"ipv6", p.B.Addr6}} {
		t.Run(tc.name, func(t *testing.T) {
			ln := listenIn(t, p.B, net.JoinHostPort(tc.addr.String(), "0"))
			accepted := make(chan error, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					accepted <- err
					return
				}
				defer c.Close()
				_, err = io.Copy(c, c)
				accepted <- err
			}()
			c := dialFrom(t, p.A, ln.Addr().String())
			if got := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != p.A.Addr && got != p.A.Addr6 {
				t.Errorf("local address = %v, want one of A's (%v, %v)", got, p.A.Addr, p.A.Addr6)
			}
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatalf("write: %v", err)
			}
			buf := make([]byte, 4)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo = %q, %v; want \"ping\", nil", buf, err)
			}
			ss, err := p.A.Sockets()
			if err != nil {
				t.Fatalf("Sockets: %v", err)
			}
			want := Socket{Local: c.LocalAddr().(*net.TCPAddr).AddrPort(), Remote: c.RemoteAddr().(*net.TCPAddr).AddrPort(), State: StateEstablished}
			want.Local = netip.AddrPortFrom(want.Local.Addr().Unmap(), want.Local.Port())
			want.Remote = netip.AddrPortFrom(want.Remote.Addr().Unmap(), want.Remote.Port())
			if !containsSocket(ss, want) {
				t.Errorf("A's sockets %v do not contain %v", ss, want)
			}
			c.Close()
			if err := <-accepted; err != nil {
				t.Errorf("echo server: %v", err)
			}
		})
	}
}

func containsSocket(ss []Socket, want Socket) bool {
	for _, s := range ss {
		if s == want {
			return true
		}
	}
	return false
}

// TestNamespacesIsolated checks that a host's sockets are visible neither in
// the other host nor in the root namespace: the point of the lab.
func TestNamespacesIsolated(t *testing.T) {
	p := NewPair(t)
	ln := listenIn(t, p.A, "127.0.0.1:0")
	want := Socket{Local: ln.Addr().(*net.TCPAddr).AddrPort(), Remote: netip.MustParseAddrPort("0.0.0.0:0"), State: StateListen}
	inA, err := p.A.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	if !containsSocket(inA, want) {
		t.Fatalf("A's sockets %v do not contain its listener %v", inA, want)
	}
	inB, err := p.B.Sockets()
	if err != nil {
		t.Fatal(err)
	}
	if containsSocket(inB, want) {
		t.Errorf("B's sockets contain A's listener %v", want)
	}
	// The test's own threads outside Do are in the root namespace.
	inRoot, err := readProcNetTCP("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	if containsSocket(inRoot, want) {
		t.Errorf("the root namespace contains A's listener %v", want)
	}
}

// TestInterruptCleansUp runs a child test binary that creates a pair and
// waits, sends it SIGINT, and checks that the namespaces are gone: t.Cleanup
// never runs on a signal, the handler must.
func TestInterruptCleansUp(t *testing.T) {
	if os.Getenv("NETLAB_INTERRUPT_CHILD") == "1" {
		p := NewPair(t)
		fmt.Printf("NAMES %s %s\n", p.A.Name, p.B.Name)
		time.Sleep(30 * time.Second) // the parent interrupts us long before
		t.Fatal("not interrupted")
	}
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestInterruptCleansUp$", "-test.v")
	cmd.Env = append(os.Environ(), "NETLAB_INTERRUPT_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var names []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "NAMES" {
			names = f[1:]
			break
		}
	}
	if names == nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child printed no namespace names (scan err %v)", sc.Err())
	}
	t.Cleanup(func() {
		for _, n := range names {
			_ = exec.Command("ip", "netns", "del", n).Run()
		}
	})
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); err != nil {
			t.Fatalf("namespace %s missing while the child runs: %v", n, err)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out)
	werr := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(werr, &ee) {
		t.Fatalf("child exit: %v, want death by signal", werr)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGINT {
		t.Errorf("child exit status %v, want killed by SIGINT", ee)
	}
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after SIGINT: stat err = %v, want not-exist", n, err)
		}
	}
}

func TestAddRuleDropsAndRemoves(t *testing.T) {
	p := NewPair(t)
	ctx := context.Background()
	ln := listenIn(t, p.B, net.JoinHostPort(p.B.Addr.String(), "0"))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dial := func() error {
		return p.A.Do(func() error {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), 300*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err
		})
	}
	remove, err := p.A.AddRule(ctx, Rule{Chain: "OUTPUT", Spec: synDrop})
	if err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if err := dial(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("dial with SYNs dropped: err = %v, want a timeout", err)
	}
	if err := remove(); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if err := remove(); err != nil {
		t.Fatalf("second remove: %v, want the first result (nil)", err)
	}
	if err := dial(); err != nil {
		t.Fatalf("dial after removing the rule: %v", err)
	}
}

func TestStartKillsOnCleanup(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		p := NewPair(t)
		cmd, _, err := p.A.Start("sleep", "60")
		if err != nil {
			t.Fatal(err)
		}
		pid = cmd.Process.Pid
		if !processAlive(pid) {
			t.Fatalf("process %d not alive right after Start", pid)
		}
	})
	if processAlive(pid) {
		t.Errorf("process %d still alive after the test's cleanup", pid)
	}
}

func TestCleanupRemovesNamespaces(t *testing.T) {
	var names []string
	t.Run("inner", func(t *testing.T) {
		p := NewPair(t)
		names = []string{p.A.Name, p.B.Name}
		for _, n := range names {
			if _, err := os.Stat(netnsDir + "/" + n); err != nil {
				t.Fatalf("namespace %s missing while the test runs: %v", n, err)
			}
		}
	})
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s after cleanup: stat err = %v, want not-exist", n, err)
		}
	}
}

func TestSweepStale(t *testing.T) {
	Require(t)
	pidMax, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	max, err := strconv.Atoi(strings.TrimSpace(string(pidMax)))
	if err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("%s%d-1a", Prefix, max+1) // no process can have this pid
	live := fmt.Sprintf("%s%d-999999a", Prefix, os.Getpid())
	for _, n := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", n, err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n).Run() })
	}
	if err := SweepStale(); err != nil {
		t.Fatalf("SweepStale: %v", err)
	}
	if _, err := os.Stat(netnsDir + "/" + stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale namespace %s: stat err = %v, want not-exist", stale, err)
	}
	if _, err := os.Stat(netnsDir + "/" + live); err != nil {
		t.Errorf("live namespace %s was removed: %v", live, err)
	}
}

func TestCreatorPID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pid  int
		want bool
	}{
		{"cnlab-123-4a", 123, true},
		{"cnlab-123-", 123, true},
		{"cnlab-123", 0, false},
		{"cnlab--4a", 0, false},
		{"cnlab-0-4a", 0, false},
		{"cnlab-x-4a", 0, false},
		{"other-123-4a", 0, false},
	} {
		pid, ok := creatorPID(tc.in)
		if pid != tc.pid || ok != tc.want {
			t.Errorf("creatorPID(%q) = %d, %v; want %d, %v", tc.in, pid, ok, tc.pid, tc.want)
		}
	}
}

func TestParseProcNetTCP(t *testing.T) {
	// Lines in the kernel's format, for a little-endian machine (the
	// parser uses the machine's byte order, like the kernel).
	const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0101630A:C350 0201630A:01BB 02 00000001:00000000 01:00000064 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
`
	const v6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0000CCFD01000000000000000100000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	got, err := parseProcNetTCP(strings.NewReader(v4))
	if err != nil {
		t.Fatal(err)
	}
	want := []Socket{
		{netip.MustParseAddrPort("127.0.0.1:8080"), netip.MustParseAddrPort("0.0.0.0:0"), StateListen},
		{netip.MustParseAddrPort("10.99.1.1:50000"), netip.MustParseAddrPort("10.99.1.2:443"), StateSynSent},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parse v4 = %v, want %v", got, want)
	}
	if _, err := parseProcNetTCP(strings.NewReader(v6)); err == nil {
		t.Errorf("parse of a 34-digit address: err = nil, want an error")
	}
	okV6 := strings.Replace(v6, "0000CCFD01000000000000000100000000", "CC0000FD010000000000000001000000", 1)
	got, err = parseProcNetTCP(strings.NewReader(okV6))
	if err != nil {
		t.Fatal(err)
	}
	wantV6 := netip.MustParseAddrPort("[fd00:cc:0:1::1]:80")
	if len(got) != 1 || got[0].Local != wantV6 {
		t.Errorf("parse v6 = %v, want local %v", got, wantV6)
	}
	for _, bad := range []string{"h\n0: zz:1 00000000:0000 01", "h\n0: 0100007F 00000000:0000 01", "h\n0: 0100007F:1 00000000:0000 XYZ", "h\n0: x"} {
		if _, err := parseProcNetTCP(strings.NewReader(bad)); err == nil {
			t.Errorf("parse(%q): err = nil, want an error", bad)
		}
	}
}

// TestSimultaneousOpenPlainSockets runs the fixture with the standard
// library only: each side dials from the port the other targets, no
// listener anywhere. Success means both connects completed, which without
// a listener is only possible through a simultaneous open.
func TestSimultaneousOpenPlainSockets(t *testing.T) {
	p := NewPair(t)
	const portA, portB = 40001, 40002
	dial := func(from, to netip.AddrPort, out *net.Conn) func(context.Context) error {
		return func(ctx context.Context) error {
			d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(from)}
			c, err := d.DialContext(ctx, "tcp", to.String())
			*out = c
			return err
		}
	}
	var ca, cb net.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := p.SimultaneousOpen(ctx,
		dial(netip.AddrPortFrom(p.A.Addr, portA), netip.AddrPortFrom(p.B.Addr, portB), &ca),
		dial(netip.AddrPortFrom(p.B.Addr, portB), netip.AddrPortFrom(p.A.Addr, portA), &cb))
	if err != nil {
		t.Fatalf("SimultaneousOpen: %v", err)
	}
	t.Logf("simultaneous open took %v", time.Since(start))
	defer ca.Close()
	defer cb.Close()
	if ca.LocalAddr().String() != cb.RemoteAddr().String() || ca.RemoteAddr().String() != cb.LocalAddr().String() {
		t.Errorf("A %v->%v and B %v->%v are not mirror images", ca.LocalAddr(), ca.RemoteAddr(), cb.LocalAddr(), cb.RemoteAddr())
	}
	if _, err := ca.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	cb.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(cb, buf); err != nil {
		t.Fatalf("read on B: %v", err)
	}
}

// TestSimultaneousOpenDialFails checks that a dial that cannot reach
// SYN-SENT yields ErrNoSynSent and the dial's own error, without hanging.
func TestSimultaneousOpenDialFails(t *testing.T) {
	p := NewPair(t)
	boom := errors.New("boom")
	err := p.SimultaneousOpen(context.Background(),
		func(context.Context) error { return boom },
		func(ctx context.Context) error { <-time.After(10 * time.Millisecond); return syscall.ECONNREFUSED })
	if !errors.Is(err, ErrNoSynSent) || !errors.Is(err, boom) {
		t.Errorf("err = %v, want ErrNoSynSent and boom", err)
	}
}

// TestBlackhole: while B is blackholed, A's writes go unanswered (the
// connection neither errors nor receives); after restore the same
// connection carries data again.
func TestBlackhole(t *testing.T) {
	p := NewPair(t)
	ln := listenIn(t, p.B, net.JoinHostPort(p.B.Addr.String(), "0"))
	go echoOne(ln)
	c := dialFrom(t, p.A, ln.Addr().String())
	restore, err := p.B.Blackhole(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatalf("write while blackholed: %v (want the kernel to accept it)", err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 1)
	var ne net.Error
	if _, err := c.Read(buf); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read while blackholed: %v, want a timeout (silence)", err)
	}
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	// TCP retransmits the byte (RTO ~200 ms, backing off) and gets the echo.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || buf[0] != 'x' {
		t.Fatalf("read after restore = %q, %v; want \"x\"", buf, err)
	}
}

// TestDoThreadsDie checks Do's promise: the thread that joined a namespace
// ends with its goroutine, so no thread of the process stays in it.
func TestDoThreadsDie(t *testing.T) {
	p := NewPair(t)
	for range 20 {
		if err := p.A.Do(func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	nsA := ""
	if err := p.A.Do(func() (err error) {
		nsA, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A thread may need a moment to exit after its goroutine has ended.
	deadline := time.Now().Add(5 * time.Second)
	for {
		in := threadsIn(t, nsA)
		if in == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d threads of the process still in A's namespace %s, want 0", in, nsA)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func threadsIn(t *testing.T, ns string) int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range tasks {
		if link, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net"); err == nil && link == ns {
			n++
		}
	}
	return n
}
