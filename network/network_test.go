package network

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRoleString(t *testing.T) {
	for _, tc := range []struct {
		r    Role
		want string
	}{
		{RoleUnknown, "unknown"}, {RoleInitiator, "initiator"}, {RoleResponder, "responder"}, {Role(9), "Role(9)"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("Role(%d).String() = %q, want %q", uint8(tc.r), got, tc.want)
		}
	}
}

func TestRolePeer(t *testing.T) {
	if got := RoleInitiator.Peer(); got != RoleResponder {
		t.Errorf("RoleInitiator.Peer() = %v, want responder", got)
	}
	if got := RoleResponder.Peer(); got != RoleInitiator {
		t.Errorf("RoleResponder.Peer() = %v, want initiator", got)
	}
	if got := RoleUnknown.Peer(); got != RoleUnknown {
		t.Errorf("RoleUnknown.Peer() = %v, want unknown", got)
	}
}

func TestDirectionString(t *testing.T) {
	for _, tc := range []struct {
		d    Direction
		want string
	}{
		{DirUnknown, "unknown"}, {DirOutbound, "outbound"}, {DirInbound, "inbound"}, {Direction(7), "Direction(7)"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("Direction(%d).String() = %q, want %q", uint8(tc.d), got, tc.want)
		}
	}
}
