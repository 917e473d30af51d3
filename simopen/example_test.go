package simopen_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/simopen/simopentest"
)

// Two sides that both dialed (a TCP simultaneous open) elect one
// initiator, then run their handshake over the returned conn in the role
// they got; here the "handshake" is one message from the initiator.
func ExampleDial() {
	a, b := simopentest.Pipe(0)
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	side := func(c net.Conn, out chan<- simopen.Result) {
		res, conn, err := simopen.Dial(ctx, c, simopen.Config{Protocols: []string{"/noise", "/tls/1.0.0"}})
		if err != nil {
			c.Close() // the peer's stage then fails too
			out <- res
			return
		}
		if res.Role == network.RoleInitiator {
			conn.Write([]byte("hello"))
		} else {
			io.ReadFull(conn, make([]byte, 5))
		}
		out <- res
	}
	ra, rb := make(chan simopen.Result, 1), make(chan simopen.Result, 1)
	go side(a, ra)
	go side(b, rb)
	resA, resB := <-ra, <-rb
	fmt.Println("one initiator:", resA.Role != resB.Role && resA.Role.Peer() == resB.Role)
	fmt.Println("protocol:", resA.Protocol, resB.Protocol)
	fmt.Println("election record:", resA.Election != nil && resA.Election.Local == resB.Election.Remote)
	// Output:
	// one initiator: true
	// protocol: /noise /noise
	// election record: true
}
