package yamux

import (
	"testing"

	"github.com/concordp2p/concord/muxer"
	"github.com/concordp2p/concord/muxer/muxertest"
	"github.com/concordp2p/concord/network"
)

// TestConformance runs the muxer conformance suite, which includes x/net's
// nettest.TestConn on streams, over the in-memory pipe. It uses real time:
// nettest sleeps and sets wall-clock deadlines.
func TestConformance(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	muxertest.Run(t, func() (muxer.Session, muxer.Session, error) {
		a, b := newPipe(pipeCapacity)
		c, err := m.NewSession(a, network.RoleInitiator)
		if err != nil {
			return nil, nil, err
		}
		s, err := m.NewSession(b, network.RoleResponder)
		if err != nil {
			c.Close()
			b.Close()
			return nil, nil, err
		}
		return c, s, nil
	})
}
