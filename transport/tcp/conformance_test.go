package tcp

import (
	"context"
	"errors"
	"net"
	"testing"

	multiaddr "github.com/multiformats/go-multiaddr"
	"golang.org/x/net/nettest"
)

// TestConnConformance runs the net.Conn conformance suite of x/net/nettest
// on a dialed and an accepted *Conn.
func TestConnConformance(t *testing.T) {
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		tr := New(Config{})
		l, err := tr.Listen(context.Background(), multiaddr.StringCast("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			return nil, nil, nil, err
		}
		defer l.Close()
		accepted := acceptOne(l)
		c, err := tr.Dial(context.Background(), l.Multiaddr())
		if err != nil {
			return nil, nil, nil, err
		}
		s := <-accepted
		if s == nil {
			c.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c, s, func() { c.Close(); s.Close() }, nil
	})
}
