package noise

import (
	"errors"
	"testing"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

var muxerCases = []struct {
	name      string
	init, rsp []string
	want      string
	wantErr   error
}{
	{"overlap, initiator's preference wins", []string{"/yamux/1.0.0", "/mplex/6.7.0"}, []string{"/mplex/6.7.0", "/yamux/1.0.0"}, "/yamux/1.0.0", nil},
	{"spec example", []string{"/yamux/1.0.0", "/mplex/6.7.0"}, []string{"/mplex/6.7.0"}, "/mplex/6.7.0", nil},
	{"both empty", nil, nil, "", nil},
	{"initiator empty", nil, []string{"/yamux/1.0.0"}, "", nil},
	{"responder empty", []string{"/yamux/1.0.0"}, nil, "", nil},
	{"disjoint", []string{"/yamux/1.0.0"}, []string{"/mplex/6.7.0"}, "", security.ErrNoCommonMuxer},
}

// TestSuite runs the shared security transport suite: every key type
// against every other over a pipe and loopback TCP, with and without the
// expected peer ID, the muxer cases, and nettest.TestConn.
func TestSuite(t *testing.T) {
	sectest.Suite{
		Protocol: ID,
		New: func(t testing.TB, id peer.PrivKey) security.Transport {
			return newTransport(t, id, Config{})
		},
		Disjoint: sectest.MuxerCase{WantErr: security.ErrNoCommonMuxer},
	}.Run(t)
}

// TestAgreeMuxer checks the selection rule itself, including the
// responder's verdict on disjoint lists (the initiator normally fails
// first).
func TestAgreeMuxer(t *testing.T) {
	for _, tc := range muxerCases {
		got, err := agreeMuxer(tc.init, tc.rsp)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: agreeMuxer = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
