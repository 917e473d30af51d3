package host

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	chost "github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/upgrader"
)

// The crossing test runs each host as a process inside a namespace: a
// host dials on goroutines of its own, which netlab.Host.Do cannot place
// in a namespace. The processes are this test binary, re-run with
// crossingRole set, running TestCrossingPeer, and driven over stdin and
// stdout with the lines below (replies start with "cx ").
//
//	→ (start)            ← cx ready <multiaddr>/p2p/<id>
//	→ dial <p2p addr>    ← cx dialed ok|<error> <Connect's ns> <ns since the first upgrade began> <crossings>
//	→ conns <peer ID>    ← cx conns <n> [<local> <remote>]…
//	→ (stdin closed)     the host closes, the process exits
const (
	crossingRole   = "CONCORD_CROSSING_ROLE" // "concord" or "go-libp2p"
	crossingKey    = "CONCORD_CROSSING_KEY"  // hex of the marshalled private key
	crossingListen = "CONCORD_CROSSING_LISTEN"
)

// TestCrossingDialsWithGoLibp2p: 20 forced TCP simultaneous opens between
// a Concord host and a stock go-libp2p host, each dialing the other from
// its listen port (netlab drops the first SYNs until both sockets are in
// SYN-SENT, so the retransmitted ones cross and the kernel joins them).
// go-libp2p has no simopen; both attempts fail on that connection, and
// Concord redials. Every round: Concord's Connect succeeds, within 1 s of
// the simultaneous open's first upgrade step, and both ends end with the
// same single connection.
func TestCrossingDialsWithGoLibp2p(t *testing.T) {
	p := netlab.NewPair(t)
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	keyA, keyB := mustKeyHex(t), mustKeyHex(t)
	const rounds = 20
	var crossed int
	var worst time.Duration
	for i := range rounds {
		port := 43000 + i
		a := startCrossingPeer(t, p.A, bin, "concord", keyA, fmt.Sprintf("/ip4/%s/tcp/%d", p.A.Addr, port))
		b := startCrossingPeer(t, p.B, bin, "go-libp2p", keyB, fmt.Sprintf("/ip4/%s/tcp/%d", p.B.Addr, port))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		remove, err := p.DropBareSYNs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		a.send("dial " + b.addr)
		b.send("dial " + a.addr)
		err = p.WaitSynSent(ctx)
		if rmErr := remove(); rmErr != nil {
			t.Fatal(rmErr)
		}
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		ra, rb := a.expect(t, "dialed"), b.expect(t, "dialed")
		cancel()
		if ra[0] != "ok" {
			t.Fatalf("round %d: Concord's Connect failed: %s", i, strings.Join(ra, " "))
		}
		sinceUpgrade, _ := strconv.ParseInt(ra[len(ra)-2], 10, 64)
		n, _ := strconv.Atoi(ra[len(ra)-1])
		crossed += n
		worst = max(worst, time.Duration(sinceUpgrade))
		if d := time.Duration(sinceUpgrade); d > time.Second {
			t.Errorf("round %d: Concord's Connect returned %v after its first upgrade began, want ≤ 1 s", i, d)
		}
		if testing.Verbose() {
			t.Logf("round %d: Concord %s; go-libp2p %s; conns %q / %q", i, strings.Join(ra, " "), strings.Join(rb, " "), a.conns(b.id), b.conns(a.id))
		}
		if err := sameConnection(a, b); err != nil {
			t.Errorf("round %d: %v (go-libp2p's dial: %s)", i, err, strings.Join(rb, " "))
		}
		a.stop(t)
		b.stop(t)
	}
	t.Logf("%d rounds, %d crossings with go-libp2p redialed; slowest Connect after its first upgrade: %v", rounds, crossed, worst)
	if crossed < rounds {
		t.Errorf("only %d of %d rounds made a simultaneous open", crossed, rounds)
	}
}

// sameConnection polls both peers until each holds exactly one connection
// to the other and it is the same TCP connection, at most 2 s.
func sameConnection(a, b *crossingPeer) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		ca, cb := a.conns(b.id), b.conns(a.id)
		err := func() error {
			if len(ca) != 2 || len(cb) != 2 {
				return fmt.Errorf("Concord holds %d connections, go-libp2p %d", len(ca)/2, len(cb)/2)
			}
			if ca[0] != cb[1] || ca[1] != cb[0] {
				return fmt.Errorf("different connections: Concord %s->%s, go-libp2p %s->%s", ca[0], ca[1], cb[0], cb[1])
			}
			return nil
		}()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustKeyHex(t *testing.T) string {
	t.Helper()
	k, err := peer.GenerateKey(peer.Ed25519, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := peer.MarshalPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// crossingPeer is a peer process of TestCrossingDialsWithGoLibp2p.
type crossingPeer struct {
	name   string
	stdin  io.WriteCloser
	lines  chan []string // replies, without "cx "
	wait   func() error
	addr   string // its p2p multiaddr
	id     string
	output *strings.Builder // everything else it printed, for failures
	mu     *sync.Mutex
}

func startCrossingPeer(t *testing.T, h *netlab.Host, bin, role, key, listen string) *crossingPeer {
	t.Helper()
	cmd := h.Command(bin, "-test.run=^TestCrossingPeer$", "-test.v=false")
	cmd.Env = append(os.Environ(), crossingRole+"="+role, crossingKey+"="+key, crossingListen+"="+listen)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	wait, err := h.StartCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	c := &crossingPeer{name: role, stdin: stdin, lines: make(chan []string, 16), wait: wait,
		output: &strings.Builder{}, mu: &sync.Mutex{}}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "cx "); ok {
				c.lines <- strings.Fields(rest)
				continue
			}
			c.mu.Lock()
			c.output.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
	}()
	ready := c.expect(t, "ready")
	c.addr = ready[0]
	c.id = ready[0][strings.LastIndex(ready[0], "/")+1:]
	return c
}

func (c *crossingPeer) send(line string) { _, _ = io.WriteString(c.stdin, line+"\n") }

// expect waits at most 10 s for the next reply, which must be verb.
func (c *crossingPeer) expect(t *testing.T, verb string) []string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok || len(l) == 0 || l[0] != verb {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("%s: got %q, want %q; output:\n%s", c.name, l, verb, c.output)
		}
		return l[1:]
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no %q within 10 s", c.name, verb)
	}
	return nil
}

// conns returns the local and remote addresses of c's connections to id,
// flattened; nil on a failed query.
func (c *crossingPeer) conns(id string) []string {
	c.send("conns " + id)
	select {
	case l := <-c.lines:
		if len(l) < 2 || l[0] != "conns" {
			return nil
		}
		return l[2:]
	case <-time.After(5 * time.Second):
		return nil
	}
}

func (c *crossingPeer) stop(t *testing.T) {
	t.Helper()
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Errorf("%s exited: %v; output:\n%s", c.name, err, c.output)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not exit within 10 s of its stdin closing", c.name)
	}
}

// TestCrossingPeer is the peer process of TestCrossingDialsWithGoLibp2p;
// run directly it skips.
func TestCrossingPeer(t *testing.T) {
	role := os.Getenv(crossingRole)
	if role == "" {
		t.Skip("the peer process of TestCrossingDialsWithGoLibp2p, not a test of its own")
	}
	kb, err := hex.DecodeString(os.Getenv(crossingKey))
	if err != nil {
		t.Fatal(err)
	}
	listen := ma.StringCast(os.Getenv(crossingListen))
	var n crossingNode
	switch role {
	case "concord":
		n, err = newConcordCrossing(kb, listen)
	case "go-libp2p":
		n, err = newLibp2pCrossing(kb, listen)
	default:
		t.Fatalf("role %q", role)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer n.close()
	fmt.Printf("cx ready %s\n", n.addr())
	var out sync.Mutex
	reply := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf("cx "+format+"\n", args...)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "dial":
			ai, err := lppeer.AddrInfoFromString(arg)
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { reply("dialed %s", n.dial(*ai)) })
		case "conns":
			id, err := lppeer.Decode(arg)
			if err != nil {
				t.Fatal(err)
			}
			reply("conns %s", n.conns(id))
		}
	}
}

type crossingNode interface {
	addr() string
	dial(lppeer.AddrInfo) string // "ok …" or the error, then the figures
	conns(lppeer.ID) string      // "<n> [<local> <remote>]…"
	close()
}

// concordCrossing is a Concord host with default options listening on
// 0.0.0.0: it dials from its listen port (transport/tcp reuses only
// unspecified-address listeners for non-loopback targets), so a crossing
// dial can become a simultaneous open.
type concordCrossing struct {
	h      *chost.Host
	listen ma.Multiaddr // the address given, with the namespace's IP

	mu           sync.Mutex
	firstUpgrade time.Time // the first outbound upgrade since dial began
	crossings    int       // upgrades that failed with ErrPeerWithoutSimopen
}

func newConcordCrossing(kb []byte, listen ma.Multiaddr) (*concordCrossing, error) {
	k, err := peer.UnmarshalPrivateKey(kb)
	if err != nil {
		return nil, err
	}
	port, err := listen.ValueForProtocol(ma.P_TCP)
	if err != nil {
		return nil, err
	}
	n := &concordCrossing{listen: listen}
	n.h, err = chost.New(chost.Config{
		Identity:    k,
		ListenAddrs: []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/" + port)},
		Upgrader:    upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{chost.SecurityNoise}}},
		Observer: func(e chost.Event) {
			ue, ok := e.(chost.UpgradeEvent)
			if !ok {
				return
			}
			n.mu.Lock()
			defer n.mu.Unlock()
			switch ev := ue.Event.(type) {
			case upgrader.UpgradeStarted:
				if n.firstUpgrade.IsZero() {
					n.firstUpgrade = time.Now()
				}
			case upgrader.UpgradeFinished:
				if errors.Is(ev.Err, upgrader.ErrPeerWithoutSimopen) {
					n.crossings++
				}
			}
		},
	})
	return n, err
}

func (n *concordCrossing) addr() string {
	return fmt.Sprintf("%s/p2p/%s", n.listen, n.h.ID())
}

func (n *concordCrossing) dial(ai lppeer.AddrInfo) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	_, err := n.h.Connect(ctx, peer.AddrInfo{ID: peer.ID(ai.ID), Addrs: ai.Addrs})
	end := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	res := "ok"
	if err != nil {
		res = strings.ReplaceAll(err.Error(), " ", "_")
	}
	return fmt.Sprintf("%s %d %d %d", res, end.Sub(start), end.Sub(n.firstUpgrade), n.crossings)
}

func (n *concordCrossing) conns(id lppeer.ID) string {
	var out []string
	for _, c := range n.h.Conns(peer.ID(id)) {
		if !c.IsClosed() && !c.Draining() {
			out = append(out, c.LocalMultiaddr().String(), c.RemoteMultiaddr().String())
		}
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", len(out)/2, strings.Join(out, " ")))
}

func (n *concordCrossing) close() { _ = n.h.Close() }

// libp2pCrossing is a stock go-libp2p host: TCP (dialing from its listen
// port, go-libp2p's default), Noise, yamux.
type libp2pCrossing struct{ h lphost.Host }

func newLibp2pCrossing(kb []byte, listen ma.Multiaddr) (*libp2pCrossing, error) {
	k, err := lpcrypto.UnmarshalPrivateKey(kb)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(k),
		libp2p.ListenAddrs(listen),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Security(lpnoise.ID, lpnoise.New),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.SwarmOpts(swarm.WithDialRanker(swarm.NoDelayDialRanker)),
	)
	if err != nil {
		return nil, err
	}
	return &libp2pCrossing{h: h}, nil
}

func (n *libp2pCrossing) addr() string {
	return fmt.Sprintf("%s/p2p/%s", n.h.Addrs()[0], n.h.ID())
}

func (n *libp2pCrossing) dial(ai lppeer.AddrInfo) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	err := n.h.Connect(ctx, ai)
	res := "ok"
	if err != nil {
		res = strings.ReplaceAll(err.Error(), " ", "_")
	}
	return fmt.Sprintf("%s %d", res, time.Since(start))
}

func (n *libp2pCrossing) conns(id lppeer.ID) string {
	var out []string
	for _, c := range n.h.Network().ConnsToPeer(id) {
		if !c.IsClosed() {
			out = append(out, c.LocalMultiaddr().String(), c.RemoteMultiaddr().String())
		}
	}
	return strings.TrimSpace(fmt.Sprintf("%d %s", len(out)/2, strings.Join(out, " ")))
}

func (n *libp2pCrossing) close() { _ = n.h.Close() }
