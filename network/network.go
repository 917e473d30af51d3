// Package network holds the small vocabulary every layer of Concord shares:
// the Direction of a raw connection and the Role a side plays after the
// simultaneous-open election.
//
// The two are deliberately distinct types. Direction records a fact about
// the socket (did this process call connect or accept); Role records the
// outcome of the simopen election (who speaks first in multistream-select,
// who is the Noise/TLS initiator, who is the yamux client). After a TCP
// simultaneous open both ends have Direction Outbound, yet exactly one of
// them has Role Initiator. Every stage after the election uses Role only.
//
// This package sits at the bottom of the import graph beside peer/ and
// imports nothing of Concord.
package network

import "fmt"

// Direction says which side of the TCP connection this process was.
type Direction uint8

const (
	// DirUnknown is the zero value; a connection never carries it once
	// the transport has produced it.
	DirUnknown Direction = iota
	// DirOutbound: this side called connect (dialed).
	DirOutbound
	// DirInbound: this side accepted the connection from a listener.
	DirInbound
)

func (d Direction) String() string {
	switch d {
	case DirUnknown:
		return "unknown"
	case DirOutbound:
		return "outbound"
	case DirInbound:
		return "inbound"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Role is the part a side plays after initiator election.
type Role uint8

const (
	// RoleUnknown is the zero value: no election has happened.
	RoleUnknown Role = iota
	// RoleInitiator proposes protocols in multistream-select, runs the
	// initiator side of the security handshake and is the yamux client.
	RoleInitiator
	// RoleResponder answers proposals, runs the responder side of the
	// handshake and is the yamux server.
	RoleResponder
)

func (r Role) String() string {
	switch r {
	case RoleUnknown:
		return "unknown"
	case RoleInitiator:
		return "initiator"
	case RoleResponder:
		return "responder"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Peer returns the role the other side plays: Initiator for Responder and
// the other way round. RoleUnknown maps to itself.
func (r Role) Peer() Role {
	switch r {
	case RoleInitiator:
		return RoleResponder
	case RoleResponder:
		return RoleInitiator
	}
	return r
}
