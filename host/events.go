package host

import (
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/host/identify"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/upgrader"
)

// Event is what Config.Observer receives: ConnOpened, ConnClosed,
// DuplicateResolved, KeepaliveFailed, BackoffScheduled, PeerIdentified,
// IdentifyFailed, HelloFailed, or an upgrader event (wrapped in
// UpgradeEvent).
type Event interface{ isHostEvent() }

// ConnOpened: a connection joined the table.
type ConnOpened struct {
	Peer          peer.ID
	Seq           uint64 // this host's sequence number for the connection
	Direction     network.Direction
	Role          network.Role
	Election      *simopen.Election // nil without an election
	Security      string
	Muxer         string
	MuxerInlined  bool
	Local, Remote ma.Multiaddr
}

// ConnClosed: a connection left the table. Reason says why: a local
// decision (ErrDuplicate, ErrStaleIncarnation, ErrProbeFailed,
// ErrHostClosed) or what the session reported (the peer closed, keepalive
// timeout: errors.Is(Reason, muxer.ErrKeepaliveTimeout), ...).
type ConnClosed struct {
	Peer   peer.ID
	Seq    uint64
	Reason error
	// Lifetime is how long the connection was in the table.
	Lifetime time.Duration
}

// KeepaliveFailed: a connection closed because its peer stopped answering
// the muxer's keepalive pings (a dead or blackholed peer). A ConnClosed
// event with the same reason follows.
type KeepaliveFailed struct {
	Peer peer.ID
	Seq  uint64
	// Lifetime is how long the connection had been open.
	Lifetime time.Duration
}

// Resolution names the rule that decided a duplicate.
type Resolution string

const (
	// ResolvedByIncarnation: the peer restarted; the connection from its
	// previous run is stale.
	ResolvedByIncarnation Resolution = "incarnation"
	// ResolvedBySequence: both peers are live; the larger peer ID's
	// newest connection survives.
	ResolvedBySequence Resolution = "sequence"
	// ResolvedByProbe: a peer without the hello protocol; the older
	// connection was probed with a ping.
	ResolvedByProbe Resolution = "probe"
)

// DuplicateResolved: a connection to a peer lost to another one.
type DuplicateResolved struct {
	Peer        peer.ID
	Rule        Resolution
	SurvivorSeq uint64 // 0 when the rule closed a connection without naming one
	ClosedSeq   uint64
	// Immediate is true when the loser closes at once (stale or dead);
	// false when it drains its streams for Config.DuplicateGrace first.
	Immediate bool
}

// BackoffScheduled: a dial to an address failed and the address is
// blocked until Until. The backoff delay runs from the start of the failed
// attempt (Config.BackoffBase), so Until is the failure's own time when
// the attempt took longer than its delay: the address may be dialed again
// at once.
type BackoffScheduled struct {
	Peer     peer.ID
	Addr     ma.Multiaddr
	Failures int
	Until    time.Time
	Err      error
}

// PeerIdentified: the peer's identify response arrived and checked out
// (Push false), or a push updated it (Push true). Info is what the
// connection now holds (Conn.Identify).
type PeerIdentified struct {
	Peer peer.ID
	Seq  uint64
	Info identify.Info
	Push bool
}

// IdentifyFailed: the identify request on a new connection failed; Err
// says why (see Conn.Identify). The connection stays up.
type IdentifyFailed struct {
	Peer peer.ID
	Seq  uint64
	Err  error
}

// HelloFailed: one half of the hello exchange on a connection failed:
// this host's hello was not delivered (Sending true), or the peer opened
// the hello stream and its hello did not arrive complete (Sending false).
// Err says why: errors.Is(Err, ErrHelloTimeout) when Config.HelloTimeout
// passed first (a peer that stalls in the hello), ErrMalformedHello for a
// message that does not parse. The connection stays up, but without the
// peer's hello it takes no part in duplicate resolution. A hello cut
// because its connection closed is not reported: ConnClosed is.
type HelloFailed struct {
	Peer    peer.ID
	Seq     uint64
	Sending bool
	Err     error
	// Elapsed is how long this half ran: from the start of this host's
	// hello (Sending) or from the peer's hello stream being accepted.
	Elapsed time.Duration
}

// UpgradeEvent carries an event of the upgrader (upgrade started/finished
// with per-stage durations and the election record, inbound refused).
type UpgradeEvent struct {
	Event upgrader.Event
}

func (ConnOpened) isHostEvent()        {}
func (ConnClosed) isHostEvent()        {}
func (DuplicateResolved) isHostEvent() {}
func (BackoffScheduled) isHostEvent()  {}
func (KeepaliveFailed) isHostEvent()   {}
func (UpgradeEvent) isHostEvent()      {}
func (PeerIdentified) isHostEvent()    {}
func (IdentifyFailed) isHostEvent()    {}
func (HelloFailed) isHostEvent()       {}
