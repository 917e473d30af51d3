package host

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnetwork "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/libp2p/go-yamux/v5"
	ma "github.com/multiformats/go-multiaddr"

	chost "github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

const (
	echoProto = "/interop/echo/1.0.0"
	// streamsPerRun streams are opened by go-libp2p while it dials, each
	// echoing streamSize bytes.
	streamsPerRun = 8
	streamSize    = 16 << 10
	// convergeBound is how long after go-libp2p's Connect returned both
	// ends may take to hold the same single connection.
	convergeBound = time.Second
)

// newLibp2p starts a go-libp2p host listening on 127.0.0.1 only, with TCP,
// Noise and yamux, no relay, metrics or address discovery, whose swarm
// dials every address of a peer at once (NoDelayDialRanker) and keeps every
// connection that succeeds: given two addresses of one peer it makes two
// connections.
func newLibp2p(t testing.TB) lphost.Host {
	t.Helper()
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(lptcp.NewTCPTransport),
		libp2p.Security(lpnoise.ID, lpnoise.New),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.SwarmOpts(swarm.WithDialRanker(swarm.NoDelayDialRanker)),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// countConns counts the connections to p that lh's swarm reports
// connected, from now on.
func countConns(lh lphost.Host, p lppeer.ID) *atomic.Int32 {
	var n atomic.Int32
	lh.Network().Notify(&lpnetwork.NotifyBundle{ConnectedF: func(_ lpnetwork.Network, c lpnetwork.Conn) {
		if c.RemotePeer() == p {
			n.Add(1)
		}
	}})
	return &n
}

// events collects a Concord host's events and counts its upgrades.
type events struct {
	mu                 sync.Mutex
	ev                 []chost.Event
	started, succeeded int // upgrades
	finished           int
}

func (e *events) observe(ev chost.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
	if ue, ok := ev.(chost.UpgradeEvent); ok {
		switch ue := ue.Event.(type) {
		case upgrader.UpgradeStarted:
			e.started++
		case upgrader.UpgradeFinished:
			e.finished++
			if ue.Err == nil {
				e.succeeded++
			}
		}
	}
}

// settled reports nil when the host runs no upgrade and has upgraded at
// least the connections go-libp2p reported connected (held): no
// connection that could still join the table is on its way.
func (e *events) settled(held int) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := e.started - e.finished; n > 0 {
		return fmt.Errorf("Concord has %d upgrades in flight", n)
	}
	if e.succeeded < held {
		return fmt.Errorf("go-libp2p reported %d connections, Concord has upgraded %d", held, e.succeeded)
	}
	return nil
}

func (e *events) snapshot() []chost.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]chost.Event(nil), e.ev...)
}

// newConcord starts a Concord host listening on two loopback addresses,
// serving echoProto. The echo handler adds to cut each stream it could not
// echo in full: a stream that reached Concord and was then cut.
func newConcord(t testing.TB, ev *events, cut *atomic.Int32) *chost.Host {
	t.Helper()
	h, err := chost.New(chost.Config{
		ListenAddrs: []ma.Multiaddr{
			ma.StringCast("/ip4/127.0.0.1/tcp/0"),
			ma.StringCast("/ip4/127.0.0.1/tcp/0"),
		},
		Upgrader: upgrader.Config{Security: upgrader.SecurityConfig{Protocols: []string{chost.SecurityNoise}}},
		// Dials from ephemeral ports: go-libp2p dials from its listen
		// port, and a crossing from both listen ports could make one TCP
		// simultaneous open, which go-libp2p v0.52 cannot upgrade.
		TCP:      tcp.Config{DisableReuse: true},
		Observer: ev.observe,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	h.SetStreamHandler(echoProto, func(s *chost.Stream) {
		defer s.Close()
		_, err := io.Copy(s, s)
		if err == nil {
			err = s.CloseWrite()
		}
		if err != nil {
			cut.Add(1)
		}
	})
	return h
}

// echoFromLibp2p opens an echo stream from lh to p and checks that every
// byte written comes back.
func echoFromLibp2p(ctx context.Context, lh lphost.Host, p lppeer.ID, size int) error {
	s, err := lh.NewStream(ctx, p, protocol.ID(echoProto))
	if err != nil {
		return fmt.Errorf("%w: %w", errNewStream, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	defer stop()
	msg := make([]byte, size)
	_, _ = rand.Read(msg)
	if _, err := s.Write(msg); err != nil {
		_ = s.Reset()
		return fmt.Errorf("write: %w: %w", errBeforeReply, err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("close write: %w: %w", errBeforeReply, err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		_ = s.Reset()
		if len(got) == 0 {
			err = fmt.Errorf("%w: %w", errBeforeReply, err)
		}
		return fmt.Errorf("read after %d of %d bytes: %w", len(got), size, err)
	}
	_ = s.Close()
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo returned %d bytes, not the %d written", len(got), size)
	}
	return nil
}

// sameSingleConn reports nil when lh and ch each hold exactly one live
// connection to the other and it is the same TCP connection: each end's
// local multiaddr is the other's remote one.
func sameSingleConn(lh lphost.Host, ch *chost.Host) error {
	lc := lh.Network().ConnsToPeer(lppeer.ID(ch.ID()))
	cc := ch.Conns(peer.ID(lh.ID()))
	if len(lc) != 1 || len(cc) != 1 {
		return fmt.Errorf("go-libp2p holds %d connections, Concord %d", len(lc), len(cc))
	}
	if cc[0].Draining() || cc[0].IsClosed() || lc[0].IsClosed() {
		return fmt.Errorf("the connection left is closing (Concord draining %v, closed %v; go-libp2p closed %v)",
			cc[0].Draining(), cc[0].IsClosed(), lc[0].IsClosed())
	}
	if !lc[0].LocalMultiaddr().Equal(cc[0].RemoteMultiaddr()) || !lc[0].RemoteMultiaddr().Equal(cc[0].LocalMultiaddr()) {
		return fmt.Errorf("different connections: go-libp2p %s->%s, Concord %s->%s",
			lc[0].LocalMultiaddr(), lc[0].RemoteMultiaddr(), cc[0].LocalMultiaddr(), cc[0].RemoteMultiaddr())
	}
	return nil
}

// waitConverged polls until sameSingleConn holds and no other connection
// is on its way (go-libp2p's Connect returns with the first connection
// while its dial of the other address may still be upgrading), or d has
// passed.
func waitConverged(lh lphost.Host, ch *chost.Host, ev *events, held *atomic.Int32, d time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		err := ev.settled(int(held.Load()))
		if err == nil {
			err = sameSingleConn(lh, ch)
		}
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > d {
			return time.Since(start), fmt.Errorf("not converged within %v: %w", d, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// errNewStream: go-libp2p's NewStream failed, so no byte of the stream's
// data was written. go-libp2p v0.52 negotiates the protocol inside
// NewStream.
var errNewStream = errors.New("go-libp2p NewStream failed")

// errBeforeReply marks a stream that failed before any byte of its echo
// came back.
var errBeforeReply = errors.New("before any reply")

// refusedByConcord reports whether err is Concord's refusal of a stream
// that crossed the GoAway of the connection it was closing, before any
// reply: a reset from the remote with code 0 (Concord's go-yamux resets a
// stream whose opening arrives after the GoAway it sent, and Concord resets
// one accepted but not yet handed to a handler when Shutdown's last stream
// ended; muxer.Session.Shutdown documents both), or the GoAway itself,
// which go-libp2p's CloseWrite returns as go-yamux's unwrapped error. The
// handler never saw such a stream: newConcord's cut counter checks that.
func refusedByConcord(err error) bool {
	if !errors.Is(err, errBeforeReply) {
		return false
	}
	var se *lpnetwork.StreamError
	if errors.As(err, &se) {
		return se.Remote && se.ErrorCode == 0
	}
	var ge *yamux.GoAwayError
	return errors.As(err, &ge) && ge.Remote && ge.ErrorCode == 0
}

// closedByConcord reports whether err is go-libp2p's report that the
// remote end (Concord) ended the connection normally: a GoAway with code 0,
// which ends a go-yamux v5 session at once.
func closedByConcord(err error) bool {
	var ce *lpnetwork.ConnError
	return errors.As(err, &ce) && ce.Remote && ce.ErrorCode == 0
}

// reopens counts the streams runStreams opened a second time, by why the
// first attempt failed.
type reopens struct {
	newStream atomic.Int32 // go-libp2p's NewStream failed
	crossed   atomic.Int32 // Concord's GoAway crossed the stream's opening
	refused   atomic.Int32 // Concord refused the stream: it crossed the GoAway
}

// runStreams opens n echo streams from lh to p at once and returns their
// errors, joined. go-libp2p picks the connection for a stream itself and
// does not retry on another one, so a stream it opens on a connection
// Concord is just closing (the loser of duplicate resolution: Concord sends
// GoAway once the loser has no stream left) fails. With no protocol known
// it fails inside NewStream; once go-libp2p knows Concord speaks echoProto
// it negotiates lazily, NewStream returns at once, and the failure shows on
// the first Read or Write as a connection closed by the remote, or, when
// its opening reached Concord after the GoAway, as a reset before any
// reply (go-libp2p has known Concord's protocols since identify, which
// its Connect waits for, so this is the common case). Either way
// the stream crossed the GoAway on the wire, never reached Concord's
// handler (newConcord's cut counter checks that), and is opened once more,
// as an application would. Any other failure means data written was not
// echoed in full.
func runStreams(ctx context.Context, lh lphost.Host, p lppeer.ID, n int, re *reopens) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := echoFromLibp2p(ctx, lh, p, streamSize)
			switch {
			case errors.Is(err, errNewStream):
				re.newStream.Add(1)
				err = echoFromLibp2p(ctx, lh, p, streamSize)
			case closedByConcord(err):
				re.crossed.Add(1)
				err = echoFromLibp2p(ctx, lh, p, streamSize)
			case refusedByConcord(err):
				re.refused.Add(1)
				err = echoFromLibp2p(ctx, lh, p, streamSize)
			}
			if err != nil {
				errs[i] = fmt.Errorf("stream %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// TestGoLibp2pDialsTwice: go-libp2p dials both of Concord's addresses at
// once and gets two connections, while it opens echo streams (they start
// together with the dial, so they land on whichever connection its swarm
// prefers while Concord resolves). Concord resolves by probing; every run
// must end with the same single connection on both ends within 1 s of
// Connect returning, and every stream must echo in full.
func TestGoLibp2pDialsTwice(t *testing.T) {
	const (
		// Run at least minRuns, and on until minTwice of them left
		// go-libp2p with two connections (the runs that test anything):
		// about half do on an idle machine, a tenth under CI's load,
		// where go-libp2p more often cancels its second dial in time.
		minRuns  = 400
		minTwice = 40
		maxRuns  = 2000
		budget   = 60 * time.Second
	)
	began := time.Now()
	var slowest time.Duration
	runs, twice := 0, 0
	var (
		re  reopens
		cut atomic.Int32
	)
	for ; runs < maxRuns && time.Since(began) < budget; runs++ {
		if runs >= minRuns && twice >= minTwice {
			break
		}
		var ev events
		ch := newConcord(t, &ev, &cut)
		lh := newLibp2p(t)
		cid := lppeer.ID(ch.ID())
		held := countConns(lh, cid)
		lh.Peerstore().AddAddrs(cid, ch.Addrs(), time.Hour)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		streamErr := make(chan error, 1)
		go func() { streamErr <- runStreams(ctx, lh, cid, streamsPerRun, &re) }()
		if err := lh.Connect(ctx, lppeer.AddrInfo{ID: cid, Addrs: ch.Addrs()}); err != nil {
			cancel()
			t.Fatalf("run %d: go-libp2p Connect: %v", runs, err)
		}
		took, convErr := waitConverged(lh, ch, &ev, held, convergeBound)
		slowest = max(slowest, took)
		if err := <-streamErr; err != nil {
			t.Errorf("run %d: streams opened by go-libp2p during resolution: %v", runs, err)
		}
		if convErr != nil {
			cancel()
			t.Fatalf("run %d: %v", runs, convErr)
		}
		if err := runStreams(ctx, lh, cid, 1, &re); err != nil {
			t.Errorf("run %d: echo after convergence: %v", runs, err)
		}
		cancel()

		probed := 0
		for _, e := range ev.snapshot() {
			if e, ok := e.(chost.DuplicateResolved); ok {
				if e.Rule != chost.ResolvedByProbe {
					t.Errorf("run %d: duplicate resolved by %q, want %q (go-libp2p has no hello)", runs, e.Rule, chost.ResolvedByProbe)
				}
				probed++
			}
		}
		// go-libp2p cancels a dial still upgrading when another has
		// succeeded (it resets that connection), so only some runs leave
		// it holding two: those are the duplicates.
		if held.Load() >= 2 {
			twice++
			if probed == 0 {
				t.Errorf("run %d: go-libp2p held two connections but Concord resolved no duplicate; its events: %s", runs, describe(ev.snapshot()))
			}
		}
		_ = lh.Close()
		_ = ch.Close()
		if t.Failed() {
			break
		}
	}
	t.Logf("%d runs in %v (%d where go-libp2p held two connections); slowest convergence after Connect returned: %v",
		runs, time.Since(began).Round(time.Millisecond), twice, slowest)
	checkReopens(t, &re, &cut, runs*(streamsPerRun+1))
	// Runs where go-libp2p kept one connection test nothing.
	if twice < minTwice {
		t.Errorf("go-libp2p held two connections in %d of %d runs, want at least %d", twice, runs, minTwice)
	}
}

// TestGoLibp2pCrossingDials: Concord and go-libp2p Connect to each other at
// the same instant, each with one address; TCP gives two connections
// (Concord dials from an ephemeral port). Same assertions as above.
func TestGoLibp2pCrossingDials(t *testing.T) {
	const runs = 50
	twice := 0
	var slowest time.Duration
	var (
		re  reopens
		cut atomic.Int32
	)
	for run := range runs {
		var ev events
		ch := newConcord(t, &ev, &cut)
		lh := newLibp2p(t)
		cid, lid := lppeer.ID(ch.ID()), peer.ID(lh.ID())
		held := countConns(lh, cid)

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var lerr, cerr error
		wg.Go(func() { <-start; lerr = lh.Connect(ctx, lppeer.AddrInfo{ID: cid, Addrs: ch.Addrs()[:1]}) })
		wg.Go(func() {
			<-start
			_, cerr = ch.Connect(ctx, peer.AddrInfo{ID: lid, Addrs: lh.Addrs()})
		})
		close(start)
		wg.Wait()
		if lerr != nil || cerr != nil {
			cancel()
			t.Fatalf("run %d: Connect: go-libp2p %v, Concord %v", run, lerr, cerr)
		}
		streamErrs := make(chan error, 1)
		go func() { streamErrs <- runStreams(ctx, lh, cid, streamsPerRun, &re) }()
		took, convErr := waitConverged(lh, ch, &ev, held, convergeBound)
		slowest = max(slowest, took)
		if streamErr := <-streamErrs; streamErr != nil {
			t.Errorf("run %d: streams opened by go-libp2p during resolution: %v", run, streamErr)
		}
		if convErr != nil {
			cancel()
			t.Fatalf("run %d: %v", run, convErr)
		}
		cancel()
		if held.Load() >= 2 {
			twice++
		}
		_ = lh.Close()
		_ = ch.Close()
		if t.Failed() {
			break
		}
	}
	t.Logf("%d runs, %d with two crossing connections; slowest convergence: %v", runs, twice, slowest)
	checkReopens(t, &re, &cut, runs*streamsPerRun)
	if twice == 0 {
		t.Errorf("crossing dials never made two connections: the test exercised nothing")
	}
}

// maxReopenedPercent bounds the share of streams go-libp2p opened on a
// connection Concord was closing. The crossing is a race on the wire that
// no survivor choice removes, but Concord keeps the connection go-libp2p
// prefers for new streams, so few should cross; a rule that drained
// go-libp2p's choice would send most of them there.
const maxReopenedPercent = 5

// checkReopens reports the streams opened a second time and fails the test
// when any stream reached Concord's handler and was cut, or when more than
// maxReopenedPercent of the streams had to be reopened.
func checkReopens(t *testing.T, re *reopens, cut *atomic.Int32, streams int) {
	t.Helper()
	ns, crossed, refused := int(re.newStream.Load()), int(re.crossed.Load()), int(re.refused.Load())
	t.Logf("%d of %d streams reopened: %d failed in go-libp2p's NewStream, %d after it, closed by Concord's GoAway, %d refused by Concord (reset before any reply)",
		ns+crossed+refused, streams, ns, crossed, refused)
	if n := cut.Load(); n != 0 {
		t.Errorf("%d streams reached Concord's echo handler and were cut", n)
	}
	if (ns+crossed+refused)*100 > maxReopenedPercent*streams {
		t.Errorf("%d of %d streams had to be reopened, more than %d %%", ns+crossed+refused, streams, maxReopenedPercent)
	}
}

// describe lists events for a failure message.
func describe(evs []chost.Event) string {
	var b strings.Builder
	for _, e := range evs {
		switch e := e.(type) {
		case chost.ConnOpened:
			fmt.Fprintf(&b, "\n  opened seq %d %v %s->%s", e.Seq, e.Direction, e.Local, e.Remote)
		case chost.ConnClosed:
			fmt.Fprintf(&b, "\n  closed seq %d after %v: %v", e.Seq, e.Lifetime, e.Reason)
		case chost.DuplicateResolved:
			fmt.Fprintf(&b, "\n  duplicate: %s closed seq %d, survivor %d, immediate %v", e.Rule, e.ClosedSeq, e.SurvivorSeq, e.Immediate)
		}
	}
	return b.String()
}
