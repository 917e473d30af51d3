package tcp

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockopts reads back the options the transport promises to set.
type sockopts struct {
	noDelay, keepAlive, keepIdle, keepIntvl, userTimeoutMS, lingerOn int
}

func readSockopts(t *testing.T, rc syscall.RawConn) sockopts {
	t.Helper()
	var o sockopts
	var errs []error
	get := func(fd int, level, opt int, dst *int) {
		v, err := unix.GetsockoptInt(fd, level, opt)
		errs = append(errs, err)
		*dst = v
	}
	if err := rc.Control(func(fd uintptr) {
		f := int(fd)
		get(f, unix.IPPROTO_TCP, unix.TCP_NODELAY, &o.noDelay)
		get(f, unix.SOL_SOCKET, unix.SO_KEEPALIVE, &o.keepAlive)
		get(f, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, &o.keepIdle)
		get(f, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, &o.keepIntvl)
		get(f, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, &o.userTimeoutMS)
		l, err := unix.GetsockoptLinger(f, unix.SOL_SOCKET, unix.SO_LINGER)
		errs = append(errs, err)
		if l != nil {
			o.lingerOn = int(l.Onoff)
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatalf("getsockopt: %v", err)
		}
	}
	return o
}

func TestSocketOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want sockopts
	}{
		{"defaults", Config{}, sockopts{noDelay: 1, keepAlive: 1, keepIdle: 15, keepIntvl: 15, userTimeoutMS: 20000}},
		{"configured", Config{KeepAlivePeriod: 7 * time.Second, UserTimeout: 3500 * time.Millisecond},
			sockopts{noDelay: 1, keepAlive: 1, keepIdle: 7, keepIntvl: 7, userTimeoutMS: 3500}},
		// keepIdle/keepIntvl keep the kernel's defaults (7200 s/75 s)
		// when keepalive is off; they are read but not compared below.
		{"off", Config{KeepAlivePeriod: -1, UserTimeout: -1}, sockopts{noDelay: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(tc.cfg)
			sl := listen(t, tr, "/ip4/127.0.0.1/tcp/0")
			accepted := acceptOne(sl)
			c, err := tr.Dial(context.Background(), sl.Multiaddr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := <-accepted
			if s == nil {
				t.Fatal("accept failed")
			}
			defer s.Close()
			for _, side := range []struct {
				name string
				c    *Conn
			}{{"dialed", c}, {"accepted", s}} {
				rc, err := side.c.SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				got := readSockopts(t, rc)
				if tc.want.keepAlive == 0 {
					got.keepIdle, got.keepIntvl = 0, 0
				}
				if got != tc.want {
					t.Errorf("%s conn options = %+v, want %+v", side.name, got, tc.want)
				}
			}
		})
	}
}

func TestListenerReusePort(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want int
	}{{"reuse", Config{}, 1}, {"disabled", Config{DisableReuse: true}, 0}} {
		t.Run(tc.name, func(t *testing.T) {
			l := listen(t, New(tc.cfg), "/ip4/127.0.0.1/tcp/0")
			rc, err := l.ln.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT) })
			if gerr != nil || got != tc.want {
				t.Errorf("SO_REUSEPORT = %d (%v), want %d", got, gerr, tc.want)
			}
		})
	}
}

// TestListenBacklog reads the backlog back with ss(8), which shows a
// listening socket's maximum accept queue in the Send-Q column.
func TestListenBacklog(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ss (iproute2) not on PATH under CI=true: %v", err)
		}
		t.Skipf("ss (iproute2) not on PATH: %v", err)
	}
	somaxconnText, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	somaxconn, err := strconv.Atoi(strings.TrimSpace(string(somaxconnText)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		backlog, want int
	}{{0, min(somaxconn, 65535)}, {7, 7}} {
		l := listen(t, New(Config{ListenBacklog: tc.backlog}), "/ip4/127.0.0.1/tcp/0")
		p := l.Addr().(*net.TCPAddr).Port
		out, err := exec.Command("ss", "-Hltn", "sport = :"+strconv.Itoa(p)).CombinedOutput()
		if err != nil {
			t.Fatalf("ss: %v: %s", err, out)
		}
		f := strings.Fields(string(out))
		if len(f) < 3 {
			t.Fatalf("ss output %q: want one listening socket", out)
		}
		if got, _ := strconv.Atoi(f[2]); got != tc.want {
			t.Errorf("ListenBacklog %d: kernel backlog (ss Send-Q) = %d, want %d", tc.backlog, got, tc.want)
		}
	}
}
