package upgrader

import (
	"net"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen"
)

// Event is what Config.Observer receives: one of UpgradeStarted,
// UpgradeFinished or InboundRefused.
type Event interface{ isEvent() }

// UpgradeStarted: an upgrade began on a raw connection.
type UpgradeStarted struct {
	Direction     network.Direction
	Local, Remote ma.Multiaddr
	ExpectedPeer  peer.ID
}

// StageDurations are the times the stages of one upgrade took.
type StageDurations struct {
	Simopen, Security, Muxer time.Duration
}

// UpgradeFinished: an upgrade ended, successfully when Err is nil. Fields
// after the failed stage are zero.
type UpgradeFinished struct {
	Direction     network.Direction
	Local, Remote ma.Multiaddr
	ExpectedPeer  peer.ID
	// Peer is the authenticated remote peer ("" before security ended).
	Peer peer.ID
	Role network.Role
	// Election is the election record, nil without an election.
	Election     *simopen.Election
	Security     string
	Muxer        string
	MuxerInlined bool
	Durations    StageDurations
	Total        time.Duration
	// Err is the *Error of a failed upgrade.
	Err error
}

// InboundRefused: a Listener closed an accepted connection without
// upgrading it, or after upgrading it when its backlog was full. Reason
// matches ErrAdmissionRefused (with the limit named) or ErrGated.
type InboundRefused struct {
	Remote net.Addr
	Reason error
}

func (UpgradeStarted) isEvent()  {}
func (UpgradeFinished) isEvent() {}
func (InboundRefused) isEvent()  {}
