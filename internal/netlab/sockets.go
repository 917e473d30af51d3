package netlab

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// TCPState is a socket state as the Linux kernel numbers it in
// /proc/net/tcp (include/net/tcp_states.h).
type TCPState uint8

// Kernel TCP states.
const (
	StateEstablished TCPState = 1
	StateSynSent     TCPState = 2
	StateSynRecv     TCPState = 3
	StateFinWait1    TCPState = 4
	StateFinWait2    TCPState = 5
	StateTimeWait    TCPState = 6
	StateClose       TCPState = 7
	StateCloseWait   TCPState = 8
	StateLastAck     TCPState = 9
	StateListen      TCPState = 10
	StateClosing     TCPState = 11
	StateNewSynRecv  TCPState = 12
)

var stateNames = [...]string{
	StateEstablished: "ESTABLISHED",
	StateSynSent:     "SYN-SENT",
	StateSynRecv:     "SYN-RECV",
	StateFinWait1:    "FIN-WAIT-1",
	StateFinWait2:    "FIN-WAIT-2",
	StateTimeWait:    "TIME-WAIT",
	StateClose:       "CLOSE",
	StateCloseWait:   "CLOSE-WAIT",
	StateLastAck:     "LAST-ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
	StateNewSynRecv:  "NEW-SYN-RECV",
}

func (s TCPState) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("TCPState(%d)", uint8(s))
}

// Socket is one TCP socket as the kernel lists it.
type Socket struct {
	Local, Remote netip.AddrPort
	State         TCPState
}

func (s Socket) String() string {
	return fmt.Sprintf("%s %s -> %s", s.State, s.Local, s.Remote)
}

// Sockets lists the TCP sockets (IPv4 and IPv6) of the host's namespace,
// read from /proc/thread-self/net/tcp{,6} on a thread inside it. Listening
// sockets, request sockets (SYN-RECV on a listener) and TIME-WAIT sockets
// are included.
func (h *Host) Sockets() ([]Socket, error) {
	var all []Socket
	err := h.Do(func() error {
		for _, f := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			ss, err := readProcNetTCP(f)
			if err != nil {
				return err
			}
			all = append(all, ss...)
		}
		return nil
	})
	return all, err
}

func readProcNetTCP(path string) ([]Socket, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ss, err := parseProcNetTCP(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ss, nil
}

// parseProcNetTCP parses the format of /proc/net/tcp and /proc/net/tcp6:
// a header line, then per socket "sl local_address rem_address st ...",
// where an address is the raw network-order IP printed as 32-bit words in
// host byte order, a colon, and the port in hex.
func parseProcNetTCP(r io.Reader) ([]Socket, error) {
	sc := bufio.NewScanner(r)
	var out []Socket
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			return nil, fmt.Errorf("short line %q", sc.Text())
		}
		local, err := parseProcAddr(fields[1])
		if err != nil {
			return nil, err
		}
		remote, err := parseProcAddr(fields[2])
		if err != nil {
			return nil, err
		}
		st, err := strconv.ParseUint(fields[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", fields[3], err)
		}
		out = append(out, Socket{Local: local, Remote: remote, State: TCPState(st)})
	}
	return out, sc.Err()
}

func parseProcAddr(s string) (netip.AddrPort, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no colon", s)
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad IP", s)
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: bad port: %w", s, err)
	}
	// hex.DecodeString read each word's digits most significant first;
	// the kernel printed each word in host order, so re-encode each word
	// in host order to get the network-order bytes back.
	ip := make([]byte, len(raw))
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(ip[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	addr, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// LinkStats are a network device's packet counters (/proc/net/dev).
type LinkStats struct {
	RxPackets, RxDropped, TxPackets, TxDropped uint64
}

// LinkStats returns the counters of the host's veth link. A packet the link
// could not hand to the peer (its backlog full, say) counts as a drop; veth
// derives one end's TxPackets from the other's RxPackets, so comparing
// those two proves nothing.
func (h *Host) LinkStats() (LinkStats, error) {
	text, err := h.readProcNet("dev")
	if err != nil {
		return LinkStats{}, fmt.Errorf("netlab: link counters in %s: %w", h.Name, err)
	}
	st, err := parseLinkStats(text, h.Link)
	if err != nil {
		return LinkStats{}, fmt.Errorf("netlab: link counters in %s: %w", h.Name, err)
	}
	return st, nil
}

// parseLinkStats finds dev in /proc/net/dev's table: "dev: rx_bytes
// rx_packets rx_errs rx_drop rx_fifo rx_frame rx_compressed rx_multicast
// tx_bytes tx_packets tx_errs tx_drop ...".
func parseLinkStats(text, dev string) (LinkStats, error) {
	for line := range strings.Lines(text) {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != dev {
			continue
		}
		v, err := uintFields(strings.Fields(rest), 1, 3, 9, 11)
		if err != nil {
			return LinkStats{}, fmt.Errorf("%s: %w", dev, err)
		}
		return LinkStats{RxPackets: v[0], RxDropped: v[1], TxPackets: v[2], TxDropped: v[3]}, nil
	}
	return LinkStats{}, fmt.Errorf("no device %s", dev)
}

// uintFields parses the fields at the given indexes as decimal integers.
func uintFields(fields []string, idx ...int) ([]uint64, error) {
	out := make([]uint64, len(idx))
	for i, j := range idx {
		if j >= len(fields) {
			return nil, fmt.Errorf("%d fields, want at least %d", len(fields), j+1)
		}
		n, err := strconv.ParseUint(fields[j], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("field %d: %w", j+1, err)
		}
		out[i] = n
	}
	return out, nil
}

// TCPCounters returns the namespace's TCP statistics: the "Tcp:" counters
// of /proc/net/snmp (RetransSegs, ActiveOpens, AttemptFails, ...) and the
// "TcpExt:" counters of /proc/net/netstat (TCPTimeouts, ListenDrops, ...),
// keyed by the kernel's names. Tests compare two snapshots to see what the
// kernel did in between, e.g. that no segment was retransmitted.
func (h *Host) TCPCounters() (map[string]uint64, error) {
	out := make(map[string]uint64)
	for _, f := range []struct{ name, prefix string }{{"snmp", "Tcp:"}, {"netstat", "TcpExt:"}} {
		text, err := h.readProcNet(f.name)
		if err != nil {
			return nil, err
		}
		if err := parseCounters(text, f.prefix, out); err != nil {
			return nil, fmt.Errorf("/proc/net/%s in %s: %w", f.name, h.Name, err)
		}
	}
	return out, nil
}

// readProcNet reads /proc/net/<name> as the host's namespace sees it.
func (h *Host) readProcNet(name string) (string, error) {
	var b []byte
	err := h.Do(func() (err error) {
		b, err = os.ReadFile("/proc/thread-self/net/" + name)
		return err
	})
	return string(b), err
}

// parseCounters reads the kernel's two-line counter format: a line of names
// and a line of values, both starting with prefix. Values that do not fit
// an unsigned integer (Tcp: MaxConn is -1) are skipped.
func parseCounters(text, prefix string, out map[string]uint64) error {
	var names []string
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != prefix {
			continue
		}
		if names == nil {
			names = fields[1:]
			continue
		}
		if len(fields)-1 != len(names) {
			return fmt.Errorf("%s has %d names and %d values", prefix, len(names), len(fields)-1)
		}
		for i, v := range fields[1:] {
			if n, err := strconv.ParseUint(v, 10, 64); err == nil {
				out[names[i]] = n
			}
		}
		return nil
	}
	return fmt.Errorf("no %s counters", prefix)
}
