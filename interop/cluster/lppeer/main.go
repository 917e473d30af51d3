// Command lppeer is a go-libp2p v0.52 host that speaks the control protocol
// of Concord's namespace harness (internal/nspeer; faults/nspeer is the
// Concord side), for the cluster scenarios of issue 17: the same ready line,
// the same event lines (opened, closed, with each connection's addresses)
// and the cluster verbs keep, table, counters and usage.
//
// go-libp2p has no keep-connected API; keep does what an application
// would: for each peer, a loop that calls Connect whenever the peer is not
// connected (woken by a disconnect, else every 100 ms), waiting 1 s with
// full jitter after a failed Connect. go-libp2p keeps every connection a
// pair makes (it resolves no duplicates), so table may list several per
// peer; there is no hello, so table reports no remote sequence numbers.
//
// -transport picks the host's one transport: tcp (go-libp2p's own, with
// Noise and yamux) or concord (Concord's, from the libp2p module:
// concordlibp2p.NewTransport, which brings its own security and muxer,
// Noise first, and dials from the listen port). Everything else — the
// identity, the listen port, the swarm, the keep loop — is the same. With
// the Concord transport, counters also reports elections (connections on
// which both ends dialed: a TCP simultaneous open, resolved by the simopen
// election), tieBreaks, and fallbacks (dials the kernel refused from the
// listen port, made from an ephemeral port instead).
//
// It is test infrastructure, built by the interop cluster test with `go
// build`; it has no stable interface.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p"
	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lphost "github.com/libp2p/go-libp2p/core/host"
	lpnet "github.com/libp2p/go-libp2p/core/network"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"
	lptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	concordlibp2p "github.com/concordp2p/concord/libp2p"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/transport/tcp"
)

func main() {
	ctl := flag.String("ctl", "", "path of the driver's Unix control socket (required)")
	keyFile := flag.String("key", "", "key file (libp2p protobuf private key), required")
	port := flag.Int("listen", -1, "TCP port to listen on at 0.0.0.0")
	stderr := flag.String("stderr", "", "file to redirect stderr to")
	tpt := flag.String("transport", "tcp", "the host's transport: tcp (go-libp2p's) or concord (concordlibp2p.NewTransport)")
	flag.Parse()
	if err := run(*ctl, *keyFile, *port, *stderr, *tpt); err != nil {
		fmt.Fprintln(os.Stderr, "lppeer:", err)
		os.Exit(1)
	}
}

type reply map[string]any

type proc struct {
	h    lphost.Host
	ctx  context.Context
	outM sync.Mutex
	out  io.Writer

	ready bool
	early []reply

	mu      sync.Mutex
	seq     uint64
	seqs    map[lpnet.Conn]uint64
	keeping map[lppeer.ID]chan struct{} // woken on a disconnect
	counts  map[string]int
	wg      sync.WaitGroup
}

func run(ctlPath, keyFile string, port int, stderr, tpt string) error {
	var transport libp2p.Option
	switch tpt {
	case "tcp":
		transport = libp2p.Transport(lptcp.NewTCPTransport)
	case "concord":
		transport = libp2p.Transport(concordlibp2p.NewTransport)
	default:
		return fmt.Errorf("-transport %q: want tcp or concord", tpt)
	}
	if stderr != "" {
		f, err := os.OpenFile(stderr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		if err := syscall.Dup2(int(f.Fd()), 2); err != nil {
			return err
		}
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	key, err := lpcrypto.UnmarshalPrivateKey(b)
	if err != nil {
		return err
	}
	ctl, err := net.DialTimeout("unix", ctlPath, 5*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := &proc{ctx: ctx, out: ctl, seqs: map[lpnet.Conn]uint64{}, keeping: map[lppeer.ID]chan struct{}{}, counts: map[string]int{}}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		transport,
		// Used by the stock transport; Concord's brings its own.
		libp2p.Security(lpnoise.ID, lpnoise.New),
		libp2p.Muxer(lpyamux.ID, lpyamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.ResourceManager(&lpnet.NullResourceManager{}),
	}
	if port >= 0 {
		opts = append(opts, libp2p.ListenAddrStrings(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", port)))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		p.emit(reply{"kind": "ready", "err": err.Error()})
		return err
	}
	p.h = h
	h.Network().Notify(&lpnet.NotifyBundle{ConnectedF: p.connected, DisconnectedF: p.disconnected})
	// libp2p.New listens before a notifiee can be registered: connections
	// accepted in between are reported here (connected ignores a second
	// report of the same connection).
	for _, c := range h.Network().Conns() {
		p.connected(h.Network(), c)
	}
	var inc [8]byte
	_, _ = rand.Read(inc[:])
	p.emit(reply{"kind": "ready", "id": h.ID().String(), "inc": hex.EncodeToString(inc[:]), "pid": os.Getpid()})
	p.flushEarly()

	var cmds sync.WaitGroup
	sc := bufio.NewScanner(ctl)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		cmds.Add(1)
		go func() {
			defer cmds.Done()
			r := p.command(f[1], f[2:])
			r["kind"], r["cmd"] = "reply", id
			p.emit(r)
		}()
	}
	cancel()
	p.wg.Wait()
	err = h.Close()
	cmds.Wait()
	return err
}

func (p *proc) emit(r reply) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	p.outM.Lock()
	defer p.outM.Unlock()
	_, _ = p.out.Write(append(b, '\n'))
}

func (p *proc) event(r reply) {
	r["kind"], r["at"] = "event", time.Now().UnixNano()
	p.outM.Lock()
	if !p.ready {
		p.early = append(p.early, r)
		p.outM.Unlock()
		return
	}
	p.outM.Unlock()
	p.emit(r)
}

func (p *proc) flushEarly() {
	p.outM.Lock()
	p.ready = true
	early := p.early
	p.early = nil
	p.outM.Unlock()
	for _, r := range early {
		p.emit(r)
	}
}

func (p *proc) count(name string) {
	p.mu.Lock()
	p.counts[name]++
	p.mu.Unlock()
}

func (p *proc) connected(_ lpnet.Network, c lpnet.Conn) {
	p.mu.Lock()
	if _, ok := p.seqs[c]; ok {
		p.mu.Unlock()
		return
	}
	p.seq++
	s := p.seq
	p.seqs[c] = s
	p.counts["opened"]++
	if c.Stat().Direction == lpnet.DirOutbound {
		p.counts["upgradesOut"]++
	} else {
		p.counts["upgradesIn"]++
	}
	if e, ok := c.Stat().Extra[concordlibp2p.StatElection].(simopen.Election); ok {
		p.counts["elections"]++
		if e.TieBreak {
			p.counts["tieBreaks"]++
		}
	}
	var tc *tcp.Conn
	if c.As(&tc) && tc.Info().Fallback {
		p.counts["fallbacks"]++
	}
	p.mu.Unlock()
	p.event(reply{"event": "opened", "peer": c.RemotePeer().String(), "seq": s,
		"direction": c.Stat().Direction.String(), "local": c.LocalMultiaddr().String(), "remote": c.RemoteMultiaddr().String()})
}

func (p *proc) disconnected(_ lpnet.Network, c lpnet.Conn) {
	p.mu.Lock()
	s := p.seqs[c]
	delete(p.seqs, c)
	p.counts["closed"]++
	wake := p.keeping[c.RemotePeer()]
	p.mu.Unlock()
	p.event(reply{"event": "closed", "peer": c.RemotePeer().String(), "seq": s})
	if wake != nil {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

func (p *proc) command(verb string, args []string) reply {
	switch verb {
	case "keep":
		return p.keep(args)
	case "table":
		return p.table()
	case "counters":
		p.mu.Lock()
		defer p.mu.Unlock()
		r := reply{}
		for k, v := range p.counts {
			r[k] = v
		}
		return r
	case "usage":
		ents, _ := os.ReadDir("/proc/self/fd")
		return reply{"fds": len(ents), "goroutines": runtime.NumGoroutine()}
	}
	return reply{"err": fmt.Sprintf("unknown command %q", verb)}
}

func (p *proc) keep(args []string) reply {
	if len(args)%2 != 0 {
		return reply{"err": "keep: want PEER MADDR pairs"}
	}
	for i := 0; i < len(args); i += 2 {
		id, err := lppeer.Decode(args[i])
		if err != nil {
			return reply{"err": err.Error()}
		}
		a, err := ma.NewMultiaddr(args[i+1])
		if err != nil {
			return reply{"err": err.Error()}
		}
		p.mu.Lock()
		if p.keeping[id] != nil {
			p.mu.Unlock()
			continue
		}
		wake := make(chan struct{}, 1)
		p.keeping[id] = wake
		p.mu.Unlock()
		p.wg.Add(1)
		go p.keepLoop(lppeer.AddrInfo{ID: id, Addrs: []ma.Multiaddr{a}}, wake)
	}
	return reply{}
}

// keepLoop is an application's keep-connected loop over go-libp2p.
func (p *proc) keepLoop(ai lppeer.AddrInfo, wake chan struct{}) {
	defer p.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for p.ctx.Err() == nil {
		if p.h.Network().Connectedness(ai.ID) != lpnet.Connected {
			ctx, cancel := context.WithTimeout(p.ctx, 15*time.Second)
			err := p.h.Connect(ctx, ai)
			cancel()
			if err != nil && p.ctx.Err() == nil {
				p.count("dialFailures")
				if errors.Is(err, context.DeadlineExceeded) {
					p.count("dialTimeouts")
				}
				d := time.Duration(mrand.Int64N(int64(time.Second)))
				select {
				case <-time.After(d):
				case <-p.ctx.Done():
				}
				continue
			}
		}
		select {
		case <-wake:
		case <-t.C:
		case <-p.ctx.Done():
		}
	}
}

func (p *proc) table() reply {
	peers := map[string][]reply{}
	for _, id := range p.h.Network().Peers() {
		var conns []reply
		for _, c := range p.h.Network().ConnsToPeer(id) {
			p.mu.Lock()
			s := p.seqs[c]
			p.mu.Unlock()
			conns = append(conns, reply{"seq": s, "direction": c.Stat().Direction.String(), "closed": c.IsClosed(),
				"local": c.LocalMultiaddr().String(), "remote": c.RemoteMultiaddr().String(), "streams": len(c.GetStreams())})
		}
		peers[id.String()] = conns
	}
	return reply{"peers": peers}
}
