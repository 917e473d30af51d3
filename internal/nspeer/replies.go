package nspeer

// The replies and events of the commands every user of the harness shares;
// a test decodes the replies of its own commands into types of its own,
// embedding Result. Field names match the program's JSON keys (the match
// is case-insensitive); durations are nanoseconds, instants unix
// nanoseconds.

import (
	"fmt"
	"slices"
	"time"
)

// Result is the outcome part of every reply: the command's error and the
// sentinel conditions it matches, by name (errors.Is in the program; see
// errorKinds in faults/nspeer), so that tests never parse error text.
type Result struct {
	Err string   `json:"err"`
	Is  []string `json:"is"`
}

// Matches reports whether the error matched the condition named kind, such
// as "handshake_timeout".
func (r Result) Matches(kind string) bool { return slices.Contains(r.Is, kind) }

// Event is a host event a peer reported.
type Event struct {
	// opened, closed, duplicate, hello_failed; and, for diagnostics,
	// backoff, keepalive_failed, upgrade_started, upgrade_finished
	Event     string
	At        int64 // unix ns when the host reported it
	Peer      string
	Seq       uint64
	Election  bool
	Direction string
	Local     string   // opened: the connection's local address
	Remote    string   // opened: its remote address
	Reason    string   // closed, hello_failed: the reason's text, for messages
	Is        []string // closed, hello_failed: the conditions the reason matches
	Survivor  uint64   // duplicate: the connection kept
	Rule      string   // duplicate: the rule that decided
	Immediate bool
	Sending   bool          // hello_failed: this host's hello (else the peer's)
	Elapsed   time.Duration // hello_failed: how long the half ran; upgrade_finished: the upgrade
	Failures  int           // backoff: consecutive failures of the address
	Until     int64         // backoff: unix ns until which the address is blocked
}

// Time is when the host reported the event.
func (e Event) Time() time.Time { return time.Unix(0, e.At) }

// Matches reports whether a close reason matched the condition named kind.
func (e Event) Matches(kind string) bool { return slices.Contains(e.Is, kind) }

// ConnectReply answers connect.
type ConnectReply struct {
	Result
	Began   int64         // unix ns when the Connect began
	Connect time.Duration // the Connect
	First   time.Duration // from the Connect's start to the first echo answered (with "echo")
	Seq     uint64        // the connection's sequence number
}

// EchoReply answers echo.
type EchoReply struct {
	Result
	Dur time.Duration
	Seq uint64 // the connection the stream used
}

// ConnState is one connection of a peer's table.
type ConnState struct {
	Seq       uint64
	Rseq      uint64 // the remote's sequence number, from its hello
	Rinc      string // the remote's incarnation, from its hello; "" before it
	Draining  bool
	Closed    bool
	Direction string
	Role      string
	Election  bool // the connection went through a simopen election
	Streams   int  // streams open on it, either direction (Conn.NumStreams)
	Local     string
	Remote    string
}

// StateReply answers state. The program also reports each listener's
// upgrader.ListenerStats as "listeners"; a test that needs them decodes
// into a type that embeds StateReply.
type StateReply struct {
	Result
	Conns    []ConnState
	Accepted uint64 // the listeners' accepted connections, summed
}

// UsageReply answers usage.
type UsageReply struct {
	Result
	Fds, Goroutines int
	RSS             int64 `json:"rss"`    // resident bytes
	Heap            int64 `json:"heap"`   // heap bytes in use
	CPU             int64 `json:"cpu_ns"` // user + system CPU time so far
}

// Converged waits up to d until a and b each hold exactly one connection
// to the other and it is the same one (each side's sequence number is the
// one the other's hello announced, with the right incarnations), not
// draining or closed. It returns the last states either way.
func Converged(a, b *Proc, d time.Duration) (sa, sb StateReply, err error) {
	var last string
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		sa, sb = StateReply{}, StateReply{}
		a.Must(&sa, "state", b.ID)
		b.Must(&sb, "state", a.ID)
		switch {
		case len(sa.Conns) != 1 || len(sb.Conns) != 1:
			last = fmt.Sprintf("%s holds %d connections, %s holds %d", a.Name, len(sa.Conns), b.Name, len(sb.Conns))
		case sa.Conns[0].Rinc == "" || sb.Conns[0].Rinc == "":
			last = "hello not exchanged yet"
		case sa.Conns[0].Seq != sb.Conns[0].Rseq || sb.Conns[0].Seq != sa.Conns[0].Rseq ||
			sa.Conns[0].Rinc != b.Inc || sb.Conns[0].Rinc != a.Inc:
			last = fmt.Sprintf("different connections: %s seq %d (peer says %d), %s seq %d (peer says %d)",
				a.Name, sa.Conns[0].Seq, sb.Conns[0].Rseq, b.Name, sb.Conns[0].Seq, sa.Conns[0].Rseq)
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

// TableReply answers table: every connection of the host's table, by the
// peer's ID.
type TableReply struct {
	Result
	Peers map[string][]ConnState
}

// Counters answers counters: what a host reported since its process
// started (faults/nspeer/cluster.go defines each count).
type Counters struct {
	Result
	Opened, Closed                                 int
	UpgradesOut, UpgradesIn, UpgradeFailures       int
	Simopens, Elections, TieBreaks, Ties           int
	DialFailures, KeepaliveFailures, HelloFailures int
	Duplicates                                     map[string]int
}

// Add adds o's counts to c's.
func (c *Counters) Add(o Counters) {
	c.Opened += o.Opened
	c.Closed += o.Closed
	c.UpgradesOut += o.UpgradesOut
	c.UpgradesIn += o.UpgradesIn
	c.UpgradeFailures += o.UpgradeFailures
	c.Simopens += o.Simopens
	c.Elections += o.Elections
	c.TieBreaks += o.TieBreaks
	c.Ties += o.Ties
	c.DialFailures += o.DialFailures
	c.KeepaliveFailures += o.KeepaliveFailures
	c.HelloFailures += o.HelloFailures
	for r, n := range o.Duplicates {
		if c.Duplicates == nil {
			c.Duplicates = map[string]int{}
		}
		c.Duplicates[r] += n
	}
}

// Sub returns c minus o: the counts between two readings of one process.
func (c Counters) Sub(o Counters) Counters {
	d := Counters{
		Opened: c.Opened - o.Opened, Closed: c.Closed - o.Closed,
		UpgradesOut: c.UpgradesOut - o.UpgradesOut, UpgradesIn: c.UpgradesIn - o.UpgradesIn,
		UpgradeFailures: c.UpgradeFailures - o.UpgradeFailures,
		Simopens:        c.Simopens - o.Simopens, Elections: c.Elections - o.Elections,
		TieBreaks: c.TieBreaks - o.TieBreaks, Ties: c.Ties - o.Ties,
		DialFailures: c.DialFailures - o.DialFailures, KeepaliveFailures: c.KeepaliveFailures - o.KeepaliveFailures,
		HelloFailures: c.HelloFailures - o.HelloFailures,
	}
	for r, n := range c.Duplicates {
		if n -= o.Duplicates[r]; n != 0 {
			if d.Duplicates == nil {
				d.Duplicates = map[string]int{}
			}
			d.Duplicates[r] = n
		}
	}
	return d
}

// Dups is the number of duplicates resolved, every rule together.
func (c Counters) Dups() int {
	n := 0
	for _, v := range c.Duplicates {
		n += v
	}
	return n
}
