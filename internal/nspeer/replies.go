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
	Event     string // opened, closed, duplicate, hello_failed
	At        int64  // unix ns when the host reported it
	Peer      string
	Seq       uint64
	Election  bool
	Direction string
	Reason    string   // closed, hello_failed: the reason's text, for messages
	Is        []string // closed, hello_failed: the conditions the reason matches
	Survivor  uint64   // duplicate: the connection kept
	Rule      string   // duplicate: the rule that decided
	Immediate bool
	Sending   bool          // hello_failed: this host's hello (else the peer's)
	Elapsed   time.Duration // hello_failed: how long the half ran
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
	RSS             int64 `json:"rss"`  // resident bytes
	Heap            int64 `json:"heap"` // heap bytes in use
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
