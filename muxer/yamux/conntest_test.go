package yamux

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/concordp2p/concord/network"
)

// TestStreamConformance runs x/net's net.Conn conformance suite on a pair
// of yamux streams over an in-memory connection. It uses real time: the
// suite sleeps and sets wall-clock deadlines.
func TestStreamConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		a, b := newPipe(pipeCapacity)
		m, err := New(Config{})
		if err != nil {
			return nil, nil, nil, err
		}
		cs, err := m.newSession(a, network.RoleInitiator)
		if err != nil {
			return nil, nil, nil, err
		}
		ss, err := m.newSession(b, network.RoleResponder)
		if err != nil {
			cs.Close()
			return nil, nil, nil, err
		}
		stop = func() {
			cs.Close()
			ss.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s1, err := cs.OpenStream(ctx)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		s2, err := ss.AcceptStream(ctx)
		if err != nil {
			stop()
			return nil, nil, nil, err
		}
		return s1, s2, stop, nil
	})
}
