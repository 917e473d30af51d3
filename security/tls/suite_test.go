package tls

import (
	"testing"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

func newTransport(t testing.TB, id peer.PrivKey, cfg Config) *Transport {
	t.Helper()
	tr, err := New(id, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

var suite = sectest.Suite{
	Protocol: ID,
	New: func(t testing.TB, id peer.PrivKey) security.Transport {
		return newTransport(t, id, Config{})
	},
	// Over TLS "libp2p" is common to every list: disjoint muxers fall
	// back to multistream-select, as the inlined-muxer spec says for TLS.
	Disjoint: sectest.MuxerCase{Want: ""},
}

func TestSuite(t *testing.T) { suite.Run(t) }
