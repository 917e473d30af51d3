package main

// The commands of the control protocol. Durations in replies are
// nanoseconds (time.Duration's JSON form); instants are unix nanoseconds.
//
//	connect PEER MADDR [force] [echo] [close] [at=UNIXNS]
//	    Connect (ForceDial with force) to PEER at MADDR, starting at the
//	    instant at= if given; with echo, then one 1-byte echo stream; with
//	    close, then close every connection to PEER, so that the next
//	    connect dials again.
//	    → began, connect (duration), first (Connect to echo answered),
//	      seq (the connection's sequence number), err, is
//	perf PEER BYTES
//	    One /perf/1.0.0 run: BYTES up, then BYTES down.
//	    → dur, err, is
//	echo PEER N
//	    One echo stream of N bytes to PEER (NewStream picks the connection).
//	    → dur, seq (the connection the stream used), err, is
//	state PEER
//	    → conns [{seq, rseq, rinc, draining, closed, direction, role,
//	      election, streams, local, remote}], listeners [upgrader.ListenerStats],
//	      accepted (the listeners' Accepted, summed)
//	stall PEER BYTES
//	    Open a sinkProtocol stream and write up to BYTES in 16 KiB writes.
//	    → written, dur (whole call), idle (from the last write that made
//	      progress to the error), seq, err, is
//	msgs PEER MADDR SENDERS PER
//	    SENDERS hosts with fresh keys each send PER msgProtocol messages,
//	    all concurrently; message ids are sender*PER+k.
//	    → acked [ids], failed, errs (a few distinct errors), dur
//	received
//	    → ids {id: count} of msgProtocol messages received
//	rawserve PORT BACKLOG ACCEPTDELAY
//	    A plain TCP listener (backlog BACKLOG) whose accept loop sleeps
//	    ACCEPTDELAY after each accept; each connection's 8-byte ids are
//	    recorded. → addr
//	rawsend ADDR N CONC
//	    N plain TCP messages, CONC at a time: dial, write 8 bytes, close.
//	    → ok [ids without any error], failed, dur
//	rawreceived
//	    → ids {id: count}, accepted
//	flood HOST:PORT IPS PERIP HOLD SPREAD [trickle=D] [loop=DUR]
//	    From each source address in the comma-separated IPS, PERIP TCP
//	    connections that send nothing (with trickle=D: the multistream
//	    header token, over and over, one byte every D) and close after
//	    HOLD, started evenly over SPREAD. With loop=DUR each of them is a
//	    worker that opens a new connection as soon as its last one ended
//	    (closed by the server, or after HOLD), until DUR from the start.
//	    → attempts, connected, connectFailed, refused
//	    (closed by the server before sending a byte), held (open until
//	    HOLD), dropped (closed by the server after it sent something),
//	    refusedP50/P99/Max (connect to close), droppedMin/Max (the same
//	    for dropped ones), dur
//	hellostall PEER MADDR
//	    Connect to PEER at MADDR as a bare upgrader with a fresh key that
//	    stalls in both halves of the hello (hello.go) and wait until the
//	    host has closed both hello streams.
//	    → inAfter (the host's hello stream: its proposal read → closed),
//	      outAfter (this peer's: the protocol agreed → closed), inErr,
//	      outErr (the read error that ended each, if not EOF), err
//	keep PEER MADDR [PEER MADDR ...]
//	    KeepConnected to each PEER at its MADDR (cluster.go); returns at once.
//	    → err
//	table
//	    The whole connection table: → peers {PEER: [conn as in state]}
//	counters
//	    What the host reported since the process started (cluster.go):
//	    → opened, closed, upgradesOut, upgradesIn, upgradeFailures,
//	      simopens, elections, tieBreaks, ties, duplicates {rule: n},
//	      dialFailures, keepaliveFailures, helloFailures
//	usage [gc]
//	    → fds (open descriptors), goroutines, rss (resident bytes), heap
//	      (bytes in use); with gc, after a garbage collection that returns
//	      freed memory to the system (Go keeps it for minutes otherwise)
//	close
//	    Close the host gracefully. → err

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host"
	"github.com/concordp2p/concord/host/echo"
	"github.com/concordp2p/concord/host/perf"
	"github.com/concordp2p/concord/peer"
)

// commandTimeout bounds every command.
const commandTimeout = 60 * time.Second

func errReply(err error) reply {
	return reply{"err": err.Error(), "is": errorKinds(err)}
}

func (p *peerProc) command(verb string, args []string) reply {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	need := func(n int) error {
		if len(args) < n {
			return fmt.Errorf("%s: %d arguments, want %d", verb, len(args), n)
		}
		return nil
	}
	var err error
	switch verb {
	case "connect":
		if err = need(2); err == nil {
			return p.connect(ctx, args)
		}
	case "echo":
		if err = need(2); err == nil {
			return p.echo(ctx, args)
		}
	case "state":
		if err = need(1); err == nil {
			return p.state(args[0])
		}
	case "stall":
		if err = need(2); err == nil {
			return p.stall(ctx, args)
		}
	case "msgs":
		if err = need(4); err == nil {
			return p.msgs(ctx, args)
		}
	case "received":
		p.recvMu.Lock()
		defer p.recvMu.Unlock()
		return reply{"ids": maps(p.recv)}
	case "rawserve":
		if err = need(3); err == nil {
			return p.raw.serve(p.quit, args)
		}
	case "rawsend":
		if err = need(3); err == nil {
			return rawSend(ctx, args)
		}
	case "rawreceived":
		return p.raw.received()
	case "flood":
		if err = need(5); err == nil {
			return flood(ctx, args)
		}
	case "hellostall":
		if err = need(2); err == nil {
			return helloStall(ctx, args)
		}
	case "perf":
		if err = need(2); err == nil {
			return p.perf(ctx, args)
		}
	case "keep":
		if err = need(2); err == nil {
			return p.keep(args)
		}
	case "table":
		return p.table()
	case "counters":
		return p.counts.reply()
	case "usage":
		if len(args) > 0 && args[0] == "gc" {
			debug.FreeOSMemory()
		}
		return usage()
	case "close":
		if err := p.h.Close(); err != nil {
			return errReply(err)
		}
		return reply{}
	default:
		err = fmt.Errorf("unknown command %q", verb)
	}
	return errReply(err)
}

func maps(m map[uint64]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[strconv.FormatUint(k, 10)] = v
	}
	return out
}

func addrInfo(id, addr string) (peer.AddrInfo, error) {
	p, err := peer.Decode(id)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return peer.AddrInfo{}, err
	}
	return peer.AddrInfo{ID: p, Addrs: []ma.Multiaddr{a}}, nil
}

func (p *peerProc) connect(ctx context.Context, args []string) reply {
	ai, err := addrInfo(args[0], args[1])
	if err != nil {
		return errReply(err)
	}
	var force, withEcho, closeAfter bool
	var at time.Time
	for _, a := range args[2:] {
		switch {
		case a == "force":
			force = true
		case a == "echo":
			withEcho = true
		case a == "close":
			closeAfter = true
		case strings.HasPrefix(a, "at="):
			ns, err := strconv.ParseInt(a[3:], 10, 64)
			if err != nil {
				return errReply(err)
			}
			at = time.Unix(0, ns)
		}
	}
	if d := time.Until(at); !at.IsZero() && d > 0 {
		time.Sleep(min(d, commandTimeout/2)) // bounded: the rest of the command has the other half
	}
	began := time.Now()
	r := reply{"began": began.UnixNano()}
	dial := p.h.Connect
	if force {
		dial = p.h.ForceDial
	}
	c, err := dial(ctx, ai)
	r["connect"] = time.Since(began)
	if err != nil {
		r["err"], r["is"] = "connect: "+err.Error(), errorKinds(err)
		return r
	}
	r["seq"] = c.Seq()
	if withEcho {
		s, err := p.h.NewStream(ctx, ai.ID, echo.ID)
		if err == nil {
			_, err = echo.Echo(ctx, s, []byte{'x'})
			_ = s.Close()
		}
		r["first"] = time.Since(began)
		if err != nil {
			r["err"], r["is"] = "first stream: "+err.Error(), errorKinds(err)
		}
	}
	if closeAfter {
		for _, c := range p.h.Conns(ai.ID) {
			_ = c.Close()
		}
	}
	return r
}

func (p *peerProc) perf(ctx context.Context, args []string) reply {
	id, err := peer.Decode(args[0])
	if err != nil {
		return errReply(err)
	}
	n, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return errReply(fmt.Errorf("perf: bad size %q", args[1]))
	}
	began := time.Now()
	s, err := p.h.NewStream(ctx, id, perf.ID)
	if err == nil {
		_, err = perf.Run(ctx, s, n, n, nil)
		_ = s.Close()
	}
	r := reply{"dur": time.Since(began)}
	if err != nil {
		r["err"], r["is"] = err.Error(), errorKinds(err)
	}
	return r
}

// usage reports what the process holds.
func usage() reply {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return errReply(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return errReply(err)
	}
	var rssKB int64
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			rssKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return reply{"fds": len(ents), "goroutines": runtime.NumGoroutine(), "rss": rssKB << 10, "heap": ms.HeapInuse,
		"cpu_ns": ru.Utime.Nano() + ru.Stime.Nano()}
}

func (p *peerProc) echo(ctx context.Context, args []string) reply {
	id, err := peer.Decode(args[0])
	if err != nil {
		return errReply(err)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 1 {
		return errReply(fmt.Errorf("echo: bad size %q", args[1]))
	}
	msg := make([]byte, n)
	for i := range msg {
		msg[i] = byte('a' + i%26)
	}
	began := time.Now()
	s, err := p.h.NewStream(ctx, id, echo.ID)
	if err != nil {
		r := errReply(fmt.Errorf("NewStream: %w", err))
		r["dur"] = time.Since(began)
		return r
	}
	defer s.Close()
	r := reply{"seq": s.Conn().Seq()}
	got, err := echo.Echo(ctx, s, msg)
	r["dur"] = time.Since(began)
	if err == nil && string(got) != string(msg) {
		err = fmt.Errorf("echo returned %d bytes, want %d identical", len(got), len(msg))
	}
	if err != nil {
		r["err"], r["is"] = err.Error(), errorKinds(err)
	}
	return r
}

func (p *peerProc) state(id string) reply {
	pid, err := peer.Decode(id)
	if err != nil {
		return errReply(err)
	}
	var conns []reply
	for _, c := range p.h.Conns(pid) {
		conns = append(conns, connReply(c))
	}
	ls := p.h.ListenerStats()
	var accepted uint64
	for _, l := range ls {
		accepted += l.Accepted
	}
	return reply{"conns": conns, "listeners": ls, "accepted": accepted}
}

// connReply is one connection of the table as state and table report it.
func connReply(c *host.Conn) reply {
	inc, seq, ok := c.RemoteHello()
	cr := reply{
		"seq": c.Seq(), "draining": c.Draining(), "closed": c.IsClosed(),
		"direction": c.Direction().String(), "role": c.Role().String(),
		"election": c.Election() != nil, "streams": c.NumStreams(),
		"local": c.LocalMultiaddr().String(), "remote": c.RemoteMultiaddr().String(),
	}
	if ok {
		cr["rinc"], cr["rseq"] = inc.String(), seq
	}
	return cr
}

func (p *peerProc) stall(ctx context.Context, args []string) reply {
	id, err := peer.Decode(args[0])
	if err != nil {
		return errReply(err)
	}
	limit, err := strconv.Atoi(args[1])
	if err != nil {
		return errReply(err)
	}
	s, err := p.h.NewStream(ctx, id, sinkProtocol)
	if err != nil {
		return errReply(fmt.Errorf("NewStream: %w", err))
	}
	defer s.Reset()
	buf := make([]byte, 16<<10)
	began := time.Now()
	last := began
	written := 0
	for written < limit && err == nil {
		var n int
		n, err = s.Write(buf)
		written += n
		if err == nil {
			last = time.Now()
		}
	}
	r := reply{"written": written, "dur": time.Since(began), "idle": time.Since(last), "seq": s.Conn().Seq()}
	if err != nil {
		r["err"], r["is"] = err.Error(), errorKinds(err)
	}
	return r
}

// msgs runs the Concord side of the overflow scenario.
func (p *peerProc) msgs(ctx context.Context, args []string) reply {
	ai, err := addrInfo(args[0], args[1])
	if err != nil {
		return errReply(err)
	}
	senders, err1 := strconv.Atoi(args[2])
	per, err2 := strconv.Atoi(args[3])
	if err := errors.Join(err1, err2); err != nil || senders < 1 || per < 1 {
		return errReply(fmt.Errorf("msgs: bad counts %q %q", args[2], args[3]))
	}
	var (
		mu     sync.Mutex
		acked  []uint64
		failed int
		errs   = map[string]bool{}
		hosts  []*host.Host
		wg     sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		failed++
		if len(errs) < 5 {
			errs[err.Error()] = true
		}
	}
	defer func() {
		for _, h := range hosts {
			_ = h.Close()
		}
	}()
	began := time.Now()
	for i := range senders {
		h, err := host.New(host.Config{})
		if err != nil {
			return errReply(err)
		}
		hosts = append(hosts, h)
		for k := range per {
			id := uint64(i*per + k)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := sendMsg(ctx, h, ai, id); err != nil {
					fail(err)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return reply{"acked": acked, "failed": failed, "errs": slices.Sorted(mapKeys(errs)), "dur": time.Since(began)}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sendMsg sends one message and waits for its ack: nil means delivered.
func sendMsg(ctx context.Context, h *host.Host, ai peer.AddrInfo, id uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := h.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	s, err := h.NewStream(ctx, ai.ID, msgProtocol)
	if err != nil {
		return fmt.Errorf("NewStream: %w", err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], id)
	if _, err := s.Write(b[:]); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := s.CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	var ack [1]byte
	if _, err := io.ReadFull(s, ack[:]); err != nil {
		return fmt.Errorf("reading the ack: %w", err)
	}
	if ack[0] != ackByte {
		return fmt.Errorf("ack byte %#x, want %#x", ack[0], ackByte)
	}
	return nil
}

// rawServer is the plain-TCP receiver of the overflow scenario.
type rawServer struct {
	mu       sync.Mutex
	ids      map[uint64]int
	accepted int
}

func (r *rawServer) serve(quit <-chan struct{}, args []string) reply {
	port, err1 := strconv.Atoi(args[0])
	backlog, err2 := strconv.Atoi(args[1])
	delay, err3 := time.ParseDuration(args[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return errReply(err)
	}
	lc := net.ListenConfig{}
	ln, err := lc.Listen(context.Background(), "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
	if err != nil {
		return errReply(err)
	}
	// The net package listens with somaxconn; listen(2) again sets the
	// small backlog (Linux accepts a second listen on a listening socket).
	sc, err := ln.(*net.TCPListener).SyscallConn()
	if err == nil {
		var lerr error
		err = sc.Control(func(fd uintptr) { lerr = listenAgain(int(fd), backlog) })
		err = errors.Join(err, lerr)
	}
	if err != nil {
		ln.Close()
		return errReply(fmt.Errorf("setting the backlog: %w", err))
	}
	r.mu.Lock()
	r.ids = make(map[uint64]int)
	r.mu.Unlock()
	go func() {
		<-quit
		ln.Close()
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.accepted++
			r.mu.Unlock()
			go r.read(c)
			time.Sleep(delay)
		}
	}()
	return reply{"addr": ln.Addr().String()}
}

func (r *rawServer) read(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var b [8]byte
	for {
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return
		}
		r.mu.Lock()
		r.ids[binary.BigEndian.Uint64(b[:])]++
		r.mu.Unlock()
	}
}

func (r *rawServer) received() reply {
	r.mu.Lock()
	defer r.mu.Unlock()
	return reply{"ids": maps(r.ids), "accepted": r.accepted}
}

// rawSend is what seed 002's application did: connect, write, close, and
// call it sent when no call failed.
func rawSend(ctx context.Context, args []string) reply {
	n, err1 := strconv.Atoi(args[1])
	conc, err2 := strconv.Atoi(args[2])
	if err := errors.Join(err1, err2); err != nil || conc < 1 {
		return errReply(fmt.Errorf("rawsend: bad counts %q %q", args[1], args[2]))
	}
	var (
		mu     sync.Mutex
		ok     []uint64
		failed int
		wg     sync.WaitGroup
	)
	sem := make(chan struct{}, conc)
	began := time.Now()
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			d := net.Dialer{Timeout: 10 * time.Second}
			err := func() error {
				c, err := d.DialContext(ctx, "tcp4", args[0])
				if err != nil {
					return err
				}
				var b [8]byte
				binary.BigEndian.PutUint64(b[:], uint64(i))
				_, werr := c.Write(b[:])
				return errors.Join(werr, c.Close())
			}()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
			} else {
				ok = append(ok, uint64(i))
			}
		}()
	}
	wg.Wait()
	return reply{"ok": ok, "failed": failed, "dur": time.Since(began)}
}

// flood makes many connection attempts from many source addresses; each
// sends nothing (or trickles), so the server's upgrade waits for it until
// it closes after hold (or the server refuses it first).
func flood(ctx context.Context, args []string) reply {
	target := args[0]
	ips := strings.Split(args[1], ",")
	perIP, err1 := strconv.Atoi(args[2])
	hold, err2 := time.ParseDuration(args[3])
	spread, err3 := time.ParseDuration(args[4])
	var trickle, loop time.Duration
	var err4 error
	for _, a := range args[5:] {
		if v, ok := strings.CutPrefix(a, "trickle="); ok {
			trickle, err4 = time.ParseDuration(v)
		} else if v, ok := strings.CutPrefix(a, "loop="); ok {
			loop, err4 = time.ParseDuration(v)
		} else {
			err4 = fmt.Errorf("flood: unknown option %q", a)
		}
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return errReply(err)
	}
	total := len(ips) * perIP
	var fc floodCount
	var wg sync.WaitGroup
	began := time.Now()
	for i := range total {
		ip := ips[i%len(ips)]
		start := began.Add(spread * time.Duration(i) / time.Duration(total))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start))
			// A worker of a loop reconnects at once, the way an attacker
			// reopens whatever the server drops.
			for {
				fc.once(ctx, target, ip, hold, trickle)
				if loop <= 0 || time.Since(began) >= loop || ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(fc.lat)
	slices.Sort(fc.dlat)
	pctOf := func(lat []time.Duration, q float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(q*float64(len(lat))))]
	}
	pct := func(q float64) time.Duration { return pctOf(fc.lat, q) }
	return reply{
		"attempts": fc.attempts, "connected": fc.connected, "connectFailed": fc.connectFailed,
		"refused": fc.refused, "held": fc.held, "dropped": fc.dropped,
		"refusedP50": pct(0.5), "refusedP99": pct(0.99), "refusedMax": pct(1),
		"droppedMin": pctOf(fc.dlat, 0), "droppedMax": pctOf(fc.dlat, 1),
		"dur": time.Since(began),
	}
}

// floodCount is what flood's attempts did.
type floodCount struct {
	mu                                          sync.Mutex
	attempts, connected, connectFailed, refused int
	held, dropped                               int
	lat                                         []time.Duration // refused: connect to close
	dlat                                        []time.Duration // dropped: connect to close
}

// once is one attempt of flood.
func (fc *floodCount) once(ctx context.Context, target, ip string, hold, trickle time.Duration) {
	fc.mu.Lock()
	fc.attempts++
	fc.mu.Unlock()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.DialContext(ctx, "tcp4", target)
	if err != nil {
		fc.mu.Lock()
		fc.connectFailed++
		fc.mu.Unlock()
		time.Sleep(10 * time.Millisecond) // the server's backlog is full: not a busy loop
		return
	}
	defer c.Close()
	if trickle > 0 {
		stop := make(chan struct{})
		defer close(stop)
		go trickleHeader(c, trickle, stop)
	}
	// The server speaks first on an admitted connection (its multistream
	// header); a refused one is closed before any byte. Read whatever
	// comes until hold ends or the server closes.
	t0 := time.Now()
	_ = c.SetReadDeadline(t0.Add(hold))
	got := 0
	var b [256]byte
	for err == nil {
		var n int
		n, err = c.Read(b[:])
		got += n
	}
	took := time.Since(t0)
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.connected++
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		fc.held++
	case got == 0:
		fc.refused++
		fc.lat = append(fc.lat, took)
	default:
		fc.dropped++
		fc.dlat = append(fc.dlat, took)
	}
}

// trickleHeader writes the multistream header token to c one byte every
// d, over and over, until stop closes or a write fails: a peer that keeps
// its handshake just alive.
func trickleHeader(c net.Conn, d time.Duration, stop <-chan struct{}) {
	tok := append([]byte{byte(len("/multistream/1.0.0\n"))}, "/multistream/1.0.0\n"...)
	t := time.NewTicker(d)
	defer t.Stop()
	for i := 0; ; i++ {
		if _, err := c.Write(tok[i%len(tok) : i%len(tok)+1]); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-stop:
			return
		}
	}
}

// listenAgain calls listen(2) on a listening socket to change its backlog.
func listenAgain(fd, backlog int) error { return syscall.Listen(fd, backlog) }
