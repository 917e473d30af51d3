// Command nspeer is the process the namespace harness (internal/nspeer) runs
// inside a network namespace: one Concord host, driven over a tiny line
// protocol, so that a test can kill it (SIGKILL), freeze it
// (SIGSTOP/SIGCONT) and restart it with the same key and port like a real
// program. The host tests, the fault suite (faults) and the harness's own
// tests all run this one program.
//
// It is test infrastructure, built by nspeer.Build with `go build` into a
// temporary directory; it is not installed and has no stable interface. It
// sits under internal/ beside its driver although it imports host: a main
// package cannot be imported, so internal/deptest ranks it as a command.
//
// # Control protocol
//
// The driver listens on a Unix socket (a filesystem path, so it is reachable
// from inside any network namespace) and passes its path with -ctl. The peer
// connects, writes one "ready" line, then reads commands, one per line:
//
//	<id> <verb> <args...>
//
// and writes JSON lines back, one per line:
//
//	{"kind":"ready","id":"12D3…","inc":"…","pid":123}
//	{"kind":"reply","cmd":<id>, …}        one per command, when it is done
//	{"kind":"event","at":<unix ns>, …}    a host event, when it happens
//
// Commands run concurrently, so replies may come in any order; the id pairs
// them with their command. Every command is bounded by a timeout of its own
// (at most 60 s). The verbs, their arguments and the reply fields are listed
// in commands.go. When the control connection ends, the peer closes its host
// and exits.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/echo"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/transport/tcp"
	"github.com/concordp2p/concord/upgrader"
)

// Protocols the peer serves besides echo.
const (
	// msgProtocol carries one message: the client writes an 8-byte
	// big-endian id and closes its write side; the server records the id
	// and answers one ack byte. An acked message is a delivered message.
	msgProtocol = "/faults/msg/1.0.0"
	// sinkProtocol's handler accepts the stream and never reads it.
	sinkProtocol = "/faults/sink/1.0.0"
	ackByte      = 0x06
)

// options are the command-line flags.
type options struct {
	ctl         string
	keyFile     string
	listenPort  int
	keepAlive   time.Duration
	pingTimeout time.Duration
	writeStall  time.Duration
	handshake   time.Duration
	backlog     int
	perIP       int
	noReuse     bool
	trace       bool
	backoffBase time.Duration
	stderr      string
}

func main() {
	var o options
	flag.StringVar(&o.ctl, "ctl", "", "path of the driver's Unix control socket (required)")
	flag.StringVar(&o.keyFile, "key", "", "key file: read if it exists, else created; empty: ephemeral key")
	flag.IntVar(&o.listenPort, "listen", -1, "TCP port to listen on at 0.0.0.0 (0: any); -1: no listener")
	flag.DurationVar(&o.keepAlive, "keepalive", 0, "yamux keepalive interval (0: default)")
	flag.DurationVar(&o.pingTimeout, "pingtimeout", 0, "yamux ping timeout (0: default)")
	flag.DurationVar(&o.writeStall, "writestall", 0, "yamux write stall timeout (0: default)")
	flag.DurationVar(&o.handshake, "handshake", 0, "handshake timeout (0: default)")
	flag.IntVar(&o.backlog, "backlog", 0, "TCP listen backlog (0: system default)")
	flag.IntVar(&o.perIP, "perip", 0, "MaxInboundUpgradesPerIP (0: default)")
	flag.BoolVar(&o.noReuse, "noreuse", false, "tcp.Config.DisableReuse: dial from ephemeral ports")
	flag.BoolVar(&o.trace, "trace", false, "also report backoff, keepalive and upgrade events (diagnostics: one line per upgrade slows a peer under a flood)")
	flag.DurationVar(&o.backoffBase, "backoff", 0, "host.Config.BackoffBase: dial backoff base (0: default)")
	flag.StringVar(&o.stderr, "stderr", "", "file to redirect stderr to (panics, race reports)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "peer:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.stderr != "" {
		f, err := os.OpenFile(o.stderr, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		// The process outlives nothing it could hand the descriptor to;
		// fd 2 stays open until exit.
		if err := syscall.Dup2(int(f.Fd()), 2); err != nil {
			return fmt.Errorf("redirecting stderr: %w", err)
		}
	}
	if o.ctl == "" {
		return errors.New("-ctl is required")
	}
	key, err := loadKey(o.keyFile)
	if err != nil {
		return err
	}
	ctl, err := net.DialTimeout("unix", o.ctl, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dialing the control socket: %w", err)
	}
	p := &peerProc{out: ctl, quit: make(chan struct{}), trace: o.trace}
	cfg := host.Config{
		Identity: key,
		TCP:      tcp.Config{ListenBacklog: o.backlog, DisableReuse: o.noReuse},
		Upgrader: upgrader.Config{
			Muxer: upgrader.MuxerConfig{Yamux: yamux.Config{
				KeepAliveInterval: o.keepAlive, PingTimeout: o.pingTimeout, WriteStallTimeout: o.writeStall,
			}},
			HandshakeTimeout:        o.handshake,
			MaxInboundUpgradesPerIP: o.perIP,
		},
		BackoffBase: o.backoffBase,
		Observer:    p.observe,
	}
	if o.listenPort >= 0 {
		cfg.ListenAddrs = []ma.Multiaddr{ma.StringCast(fmt.Sprintf("/ip4/0.0.0.0/tcp/%d", o.listenPort))}
	}
	h, err := host.New(cfg)
	if err != nil {
		p.emit(map[string]any{"kind": "ready", "err": err.Error()})
		return err
	}
	p.h = h
	p.serve()
	p.emit(map[string]any{"kind": "ready", "id": h.ID().String(), "inc": h.Incarnation().String(), "pid": os.Getpid()})
	p.flushEarly()

	var wg sync.WaitGroup
	sc := bufio.NewScanner(ctl)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		id, err := strconv.Atoi(f[0])
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := p.command(f[1], f[2:])
			if r == nil {
				r = reply{}
			}
			r["kind"], r["cmd"] = "reply", id
			p.emit(r)
		}()
	}
	close(p.quit)
	err = h.Close()
	wg.Wait()
	return err
}

// loadKey reads path, or creates it with a fresh Ed25519 key when it does
// not exist; an empty path means an ephemeral key.
func loadKey(path string) (peer.PrivKey, error) {
	if path == "" {
		return nil, nil
	}
	k, err := peer.ReadKeyFile(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if k, err = peer.GenerateKey(peer.Ed25519, nil); err != nil {
		return nil, err
	}
	return k, peer.WriteKeyFile(path, k)
}

// reply is one JSON reply or event line.
type reply map[string]any

// peerProc is the running peer.
type peerProc struct {
	h     *host.Host
	quit  chan struct{} // closed when the control connection ends
	trace bool          // -trace: the diagnostic events too

	outMu sync.Mutex
	out   io.Writer
	ready bool    // the ready line is out
	early []reply // events before it

	counts counters

	recvMu sync.Mutex
	recv   map[uint64]int // msgProtocol: id → times received
	raw    rawServer
}

// emit writes one JSON line; a failed write means the driver is gone, and
// the read loop ends on its own.
func (p *peerProc) emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(reply{"kind": "reply", "err": "marshal: " + err.Error()})
	}
	p.outMu.Lock()
	defer p.outMu.Unlock()
	_, _ = p.out.Write(append(b, '\n'))
}

// observe reports host events. It runs synchronously in the host and must
// not block: it formats one short line for a socket the driver drains.
func (p *peerProc) observe(e host.Event) {
	p.counts.observe(e)
	r := reply{"kind": "event", "at": time.Now().UnixNano()}
	switch e := e.(type) {
	case host.ConnOpened:
		r["event"], r["peer"], r["seq"] = "opened", e.Peer.String(), e.Seq
		r["direction"], r["role"], r["election"] = e.Direction.String(), e.Role.String(), e.Election != nil
		r["local"], r["remote"] = e.Local.String(), e.Remote.String()
	case host.ConnClosed:
		r["event"], r["peer"], r["seq"] = "closed", e.Peer.String(), e.Seq
		r["lifetime"] = e.Lifetime
		if e.Reason != nil {
			r["reason"] = e.Reason.Error()
		}
		r["is"] = errorKinds(e.Reason)
	case host.DuplicateResolved:
		r["event"], r["peer"], r["seq"] = "duplicate", e.Peer.String(), e.ClosedSeq
		r["survivor"], r["rule"], r["immediate"] = e.SurvivorSeq, string(e.Rule), e.Immediate
	case host.HelloFailed:
		r["event"], r["peer"], r["seq"] = "hello_failed", e.Peer.String(), e.Seq
		r["sending"], r["elapsed"] = e.Sending, e.Elapsed
		r["reason"], r["is"] = e.Err.Error(), errorKinds(e.Err)
	case host.BackoffScheduled:
		if !p.trace {
			return
		}
		r["event"], r["peer"], r["remote"] = "backoff", e.Peer.String(), e.Addr.String()
		r["failures"], r["until"] = e.Failures, e.Until.UnixNano()
		r["reason"], r["is"] = e.Err.Error(), errorKinds(e.Err)
	case host.KeepaliveFailed:
		if !p.trace {
			return
		}
		r["event"], r["peer"], r["seq"] = "keepalive_failed", e.Peer.String(), e.Seq
	case host.UpgradeEvent:
		if !p.trace {
			return
		}
		switch u := e.Event.(type) {
		case upgrader.UpgradeStarted:
			r["event"], r["peer"], r["direction"] = "upgrade_started", u.ExpectedPeer.String(), u.Direction.String()
			r["local"], r["remote"] = u.Local.String(), u.Remote.String()
		case upgrader.UpgradeFinished:
			r["event"], r["peer"], r["direction"] = "upgrade_finished", u.Peer.String(), u.Direction.String()
			if u.Peer == "" {
				r["peer"] = u.ExpectedPeer.String()
			}
			r["local"], r["remote"], r["election"] = u.Local.String(), u.Remote.String(), u.Election != nil
			r["elapsed"] = u.Total
			if u.Err != nil {
				r["reason"], r["is"] = u.Err.Error(), errorKinds(u.Err)
			}
		default:
			return
		}
	default:
		return
	}
	p.emitEvent(r)
}

// emitEvent writes an event line, or keeps it until the ready line is out:
// a peer that others dial already (a cluster restarting) may open a
// connection between listening and saying ready, and the driver reads the
// ready line first.
func (p *peerProc) emitEvent(r reply) {
	p.outMu.Lock()
	if !p.ready {
		p.early = append(p.early, r)
		p.outMu.Unlock()
		return
	}
	p.outMu.Unlock()
	p.emit(r)
}

// flushEarly writes the events kept before the ready line, in order, and
// lets later ones through.
func (p *peerProc) flushEarly() {
	p.outMu.Lock()
	defer p.outMu.Unlock()
	p.ready = true
	for _, r := range p.early {
		b, err := json.Marshal(r)
		if err == nil {
			_, _ = p.out.Write(append(b, '\n'))
		}
	}
	p.early = nil
}

// serve installs the stream handlers.
func (p *peerProc) serve() {
	p.recv = make(map[uint64]int)
	p.h.SetStreamHandler(echo.ID, func(s *host.Stream) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = echo.Serve(ctx, s)
	})
	p.h.SetStreamHandler(perf.ID, func(s *host.Stream) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_ = perf.Serve(ctx, s)
	})
	p.h.SetStreamHandler(msgProtocol, func(s *host.Stream) {
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(20 * time.Second))
		var b [8]byte
		if _, err := io.ReadFull(s, b[:]); err != nil {
			_ = s.Reset()
			return
		}
		id := binary.BigEndian.Uint64(b[:])
		p.recvMu.Lock()
		p.recv[id]++
		p.recvMu.Unlock()
		if _, err := s.Write([]byte{ackByte}); err != nil {
			_ = s.Reset()
			return
		}
		_ = s.CloseWrite()
	})
	p.h.SetStreamHandler(sinkProtocol, func(s *host.Stream) {
		// Never read: the writer must run out of flow-control credit
		// and get a stall error. The stream is released when the peer
		// quits.
		<-p.quit
		_ = s.Reset()
	})
}

// errorKinds names the sentinel conditions err matches, for the tests to
// assert on without parsing error text.
func errorKinds(err error) []string {
	if err == nil {
		return nil
	}
	var kinds []string
	for _, k := range []struct {
		name   string
		target error
	}{
		{"write_stalled", muxer.ErrWriteStalled},
		{"keepalive_timeout", muxer.ErrKeepaliveTimeout},
		{"session_closed", muxer.ErrSessionClosed},
		{"stream_reset", muxer.ErrStreamReset},
		{"conn_write_timeout", muxer.ErrConnWriteTimeout},
		{"stale_incarnation", host.ErrStaleIncarnation},
		{"duplicate", host.ErrDuplicate},
		{"hello_timeout", host.ErrHelloTimeout},
		{"backoff", host.ErrBackoff},
		{"handshake_timeout", upgrader.ErrHandshakeTimeout},
		{"admission_refused", upgrader.ErrAdmissionRefused},
		{"dial_timeout", tcp.ErrDialTimeout},
		{"econnreset", syscall.ECONNRESET},
		{"econnrefused", syscall.ECONNREFUSED},
		{"epipe", syscall.EPIPE},
		{"eof", io.EOF},
		{"unexpected_eof", io.ErrUnexpectedEOF},
		{"deadline", os.ErrDeadlineExceeded},
		{"context_deadline", context.DeadlineExceeded},
	} {
		if errors.Is(err, k.target) {
			kinds = append(kinds, k.name)
		}
	}
	return kinds
}
