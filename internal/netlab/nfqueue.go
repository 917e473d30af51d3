//go:build linux

package netlab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DelayLine holds every packet that leaves a host through its veth link for
// a fixed time before letting it go, in order. It is a userspace NFQUEUE
// consumer written on raw netlink: an iptables/ip6tables rule
//
//	-A OUTPUT -o veth0 -j NFQUEUE --queue-num N --queue-bypass
//
// sends each outgoing packet to queue N; the line reads the packet's id
// (metadata only, no payload is copied), and issues NF_ACCEPT for it when
// the delay has passed since it was read. This stands in for tc netem,
// which the kernel this was written on lacks.
//
// A delay line on one host adds its delay to one direction; lines on both
// hosts of a pair add it to both, so a request/response round trip grows by
// twice the delay. Packets keep their order. The queue is bounded (4096
// packets) and fails open: when full, packets pass undelayed rather than
// being dropped. The line's goroutines and socket are released by Stop,
// which runs by itself when the test ends.
type DelayLine struct {
	host  *Host
	delay time.Duration
	queue uint16

	f  *os.File
	rc syscall.RawConn

	rules []func() error

	pending  chan heldPacket // reader -> writer, in arrival order
	stopping chan struct{}   // closed by Stop: release everything now
	readDone chan struct{}   // closed by the reader when it returns
	wrDone   chan struct{}   // closed by the writer when it returns
	stopOnce sync.Once
	stopErr  error

	packets  atomic.Uint64 // packets read from the kernel
	failures atomic.Uint64 // verdicts that could not be sent, unparsable messages
	readErr  error         // written by the reader before readDone closes
}

type heldPacket struct {
	id  uint32
	due time.Time
}

const (
	delayQueueMaxLen = 4096
	// recvBufSize is the netlink receive buffer. Messages wait there only
	// until the reader picks them up (packets wait in the kernel's queue),
	// so this is generous.
	recvBufSize = 4 << 20
)

// DelayLine starts a delay line of d on the host's veth link, for IPv4 and
// IPv6. ctx bounds the set-up only; the line runs until Stop or the end of
// the test.
func (h *Host) DelayLine(ctx context.Context, d time.Duration) (*DelayLine, error) {
	if d <= 0 {
		return nil, fmt.Errorf("netlab: delay line of %v: the delay must be positive", d)
	}
	queue := uint16(h.nfqueueNum.Add(1) - 1)
	var fd int
	if err := h.Do(func() (err error) {
		fd, err = openNFQueueSocket()
		return err
	}); err != nil {
		return nil, fmt.Errorf("netlab: delay line in %s: %w", h.Name, err)
	}
	l := &DelayLine{
		host:     h,
		delay:    d,
		queue:    queue,
		f:        os.NewFile(uintptr(fd), "nfqueue-"+strconv.Itoa(int(queue))),
		pending:  make(chan heldPacket, delayQueueMaxLen),
		stopping: make(chan struct{}),
		readDone: make(chan struct{}),
		wrDone:   make(chan struct{}),
	}
	var err error
	if l.rc, err = l.f.SyscallConn(); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("netlab: delay line in %s: %w", h.Name, err)
	}
	if err := l.configure(ctx); err != nil {
		l.f.Close()
		return nil, fmt.Errorf("netlab: delay line in %s, queue %d: %w", h.Name, queue, err)
	}
	go l.read()
	go l.write()
	h.ent.addUndo(l.Stop)
	for _, v6 := range []bool{false, true} {
		rm, err := h.AddRule(ctx, Rule{Chain: "OUTPUT", IPv6: v6, Spec: []string{
			"-o", h.Link, "-j", "NFQUEUE", "--queue-num", strconv.Itoa(int(queue)), "--queue-bypass"}})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("netlab: delay line in %s: %w", h.Name, err), l.Stop())
		}
		l.rules = append(l.rules, rm)
	}
	return l, nil
}

// openNFQueueSocket opens a non-blocking NETLINK_NETFILTER socket on the
// calling thread (so in its namespace).
func openNFQueueSocket() (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("netlink socket: %w", err)
	}
	steps := []struct {
		what string
		err  error
	}{
		{"bind", unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})},
		// Without this a full receive buffer makes recv fail with ENOBUFS;
		// the queue's fail-open flag already covers overload.
		{"NETLINK_NO_ENOBUFS", unix.SetsockoptInt(fd, unix.SOL_NETLINK, unix.NETLINK_NO_ENOBUFS, 1)},
		{"SO_RCVBUFFORCE", unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, recvBufSize)},
	}
	for _, s := range steps {
		if s.err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("netlink socket: %s: %w", s.what, s.err)
		}
	}
	return fd, nil
}

// configure binds the socket to the queue and sets copy mode, queue length
// and fail-open, waiting for the kernel's acknowledgement of each request.
func (l *DelayLine) configure(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := l.f.SetReadDeadline(deadline); err != nil {
		return err
	}
	defer l.f.SetReadDeadline(time.Time{})
	bind := nfqMessage(nfqnlMsgConfig, nlmFRequest|nlmFAck, 1, l.queue,
		nlAttr{nfqaCfgCmd, []byte{nfqnlCfgCmdBind, 0, 0, 0}})
	if err := l.request(bind, 1); err != nil {
		return fmt.Errorf("binding queue (is nfnetlink_queue available? try modprobe nfnetlink_queue): %w", err)
	}
	params := nfqMessage(nfqnlMsgConfig, nlmFRequest|nlmFAck, 2, l.queue,
		nlAttr{nfqaCfgParams, append(be32(0), nfqnlCopyMeta)},
		nlAttr{nfqaCfgQueueMaxlen, be32(delayQueueMaxLen)},
		nlAttr{nfqaCfgMask, be32(nfqaCfgFFailOpen)},
		nlAttr{nfqaCfgFlags, be32(nfqaCfgFFailOpen)})
	if err := l.request(params, 2); err != nil {
		return fmt.Errorf("setting copy mode, length and fail-open: %w", err)
	}
	return nil
}

// request sends msg and waits for the acknowledgement with sequence seq.
// It runs before the rules exist, so no packet can arrive meanwhile.
func (l *DelayLine) request(msg []byte, seq uint32) error {
	if err := l.send(msg); err != nil {
		return err
	}
	buf := make([]byte, 8192)
	for range 16 {
		n, err := l.recv(buf)
		if err != nil {
			return fmt.Errorf("waiting for the acknowledgement: %w", err)
		}
		evs, err := parseNetlink(buf[:n])
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.kind == evAck && ev.seq == seq {
				if ev.errno != 0 {
					return syscall.Errno(-ev.errno)
				}
				return nil
			}
		}
	}
	return errors.New("no acknowledgement among 16 messages")
}

func (l *DelayLine) send(msg []byte) error {
	var serr error
	err := l.rc.Write(func(fd uintptr) bool {
		serr = unix.Sendto(int(fd), msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// recv waits (through the runtime poller, so a read deadline or Close
// interrupts it) for one datagram.
func (l *DelayLine) recv(buf []byte) (int, error) {
	var n int
	var rerr error
	err := l.rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	return n, rerr
}

// read is the reader goroutine: it stamps each packet with its due time
// and hands it to the writer. When Stop wakes it (a read deadline in the
// past), it drains what the socket still holds without waiting, then ends.
func (l *DelayLine) read() {
	defer close(l.readDone)
	defer close(l.pending)
	buf := make([]byte, 64<<10)
	for {
		n, err := l.recv(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			l.drain(buf)
			return
		}
		if err != nil {
			l.readErr = err
			return
		}
		l.hand(buf[:n], time.Now().Add(l.delay))
	}
}

// drain releases what the socket still holds, and keeps polling until it
// has been quiet for a few milliseconds: a packet that matched the rule
// just before Stop removed it can reach the socket after a first empty
// read, and the unbind that follows would drop it. Bounded in time.
func (l *DelayLine) drain(buf []byte) {
	const quietPolls, pollGap, limit = 3, 5 * time.Millisecond, 250 * time.Millisecond
	deadline := time.Now().Add(limit)
	for quiet := 0; quiet < quietPolls && time.Now().Before(deadline); {
		if l.drainOnce(buf) == 0 {
			quiet++
			time.Sleep(pollGap)
		} else {
			quiet = 0
		}
	}
}

// drainOnce reads the socket without waiting until it is empty and
// returns how many messages it read.
func (l *DelayLine) drainOnce(buf []byte) int {
	for i := range delayQueueMaxLen + 16 {
		var n int
		var rerr error
		if err := l.rc.Control(func(fd uintptr) {
			n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
		}); err != nil || rerr != nil {
			return i // EAGAIN: nothing left
		}
		l.hand(buf[:n], time.Time{})
	}
	return delayQueueMaxLen + 16
}

func (l *DelayLine) hand(msg []byte, due time.Time) {
	evs, err := parseNetlink(msg)
	if err != nil {
		l.failures.Add(1)
	}
	for _, ev := range evs {
		if ev.kind == evPacket {
			l.packets.Add(1)
			l.pending <- heldPacket{ev.packetID, due}
		}
	}
}

// write is the writer goroutine: it releases packets in order when they
// are due, or at once after Stop.
//
// It runs on a locked OS thread pinned to one CPU. A verdict reinjects the
// packet on the CPU that sends it, and veth hands it to the peer through
// that CPU's backlog; verdicts sent from different CPUs could overtake each
// other there, and TCP would take the reordering for loss. The thread is
// never unlocked, so it ends with the goroutine and its affinity with it.
func (l *DelayLine) write() {
	defer close(l.wrDone)
	runtime.LockOSThread()
	pinToOneCPU() // best effort: without it order is likely, not certain
	timer := time.NewTimer(0)
	defer timer.Stop()
	stopping := l.stopping
	for p := range l.pending {
		if wait := time.Until(p.due); wait > 0 && stopping != nil {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-stopping:
				stopping = nil // release the rest without waiting
			}
		}
		if err := l.send(verdictMessage(l.queue, p.id)); err != nil {
			l.failures.Add(1)
		}
	}
}

// Stop releases the packets still held (at once, not after their delay,
// and in order), removes the rules, unbinds the queue and closes the
// socket; no packet is lost by stopping, and Stop returns an error if the
// kernel's queue still held one when it was unbound. Stopping while
// traffic flows can reorder the few packets that sit in the queue, for
// microseconds, at the instant a rule goes: new packets then bypass the
// queue and may overtake them. TCP may answer that with spurious
// retransmissions. It is safe to call more than once; later calls return
// the first result.
func (l *DelayLine) Stop() error {
	l.stopOnce.Do(func() {
		// Release at once from now on, still through the queue and in
		// order; only then let new packets bypass it. Removing the rules
		// first would let new packets overtake held ones for up to the
		// delay, and TCP would take that reordering for loss.
		close(l.stopping)
		var errs []error
		for _, rm := range l.rules {
			errs = append(errs, rm())
		}
		// Wake the reader; it drains the socket and ends.
		errs = append(errs, l.f.SetReadDeadline(time.Now()))
		<-l.readDone
		<-l.wrDone
		if l.readErr != nil {
			errs = append(errs, fmt.Errorf("reading the queue: %w", l.readErr))
		}
		// The unbind drops whatever still waits for a verdict. The
		// kernel's own count says whether anything does, so a loss at
		// Stop is an error rather than a guess from TCP's behaviour.
		if st, err := l.host.queueStatus(l.queue); err != nil {
			errs = append(errs, err)
		} else if st.waiting != 0 {
			errs = append(errs, fmt.Errorf("netlab: delay line in %s: %d of the %d packets queued still waited for a verdict at Stop; the unbind dropped them", l.host.Name, st.waiting, st.assigned))
		}
		unbind := nfqMessage(nfqnlMsgConfig, nlmFRequest, 3, l.queue,
			nlAttr{nfqaCfgCmd, []byte{nfqnlCfgCmdUnbind, 0, 0, 0}})
		errs = append(errs, l.send(unbind), l.f.Close())
		l.stopErr = errors.Join(errs...)
	})
	return l.stopErr
}

// Delay returns the line's delay.
func (l *DelayLine) Delay() time.Duration { return l.delay }

// Packets returns how many packets the line has held so far.
func (l *DelayLine) Packets() uint64 { return l.packets.Load() }

// Failures returns how many verdicts could not be sent or kernel messages
// could not be parsed; a packet whose verdict was lost stays queued until
// Stop closes the socket, when the kernel drops it.
func (l *DelayLine) Failures() uint64 { return l.failures.Load() }

// pinToOneCPU restricts the calling thread to the first CPU it may run on.
func pinToOneCPU() {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return
	}
	for cpu := range 1024 {
		if set.IsSet(cpu) {
			var one unix.CPUSet
			one.Set(cpu)
			_ = unix.SchedSetaffinity(0, &one)
			return
		}
	}
}

// queueState is one line of the namespace's
// /proc/net/netfilter/nfnetlink_queue.
type queueState struct {
	waiting  uint64 // packets queued and not yet given a verdict
	assigned uint64 // packet ids the kernel has handed out (id_sequence)
}

// queueStatus reads the kernel's view of queue num in the host's namespace.
func (h *Host) queueStatus(num uint16) (queueState, error) {
	text, err := h.readProcNet("netfilter/nfnetlink_queue")
	if err != nil {
		return queueState{}, fmt.Errorf("netlab: reading queue %d's state in %s: %w", num, h.Name, err)
	}
	st, err := parseQueueStatus(text, num)
	if err != nil {
		return queueState{}, fmt.Errorf("netlab: queue %d in %s: %w", num, h.Name, err)
	}
	return st, nil
}

// parseQueueStatus finds queue num in the kernel's nfnetlink_queue table:
// one line per bound queue, "num portid waiting copy_mode copy_range
// queue_dropped user_dropped id_sequence 1".
func parseQueueStatus(text string, num uint16) (queueState, error) {
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != strconv.Itoa(int(num)) {
			continue
		}
		v, err := uintFields(f, 2, 7)
		if err != nil {
			return queueState{}, fmt.Errorf("%q: %w", strings.TrimSpace(line), err)
		}
		return queueState{waiting: v[0], assigned: v[1]}, nil
	}
	return queueState{}, errors.New("not bound (no line in nfnetlink_queue)")
}
