// Command example runs two go-libp2p hosts whose TCP transport is
// Concord's, connects them, pings, and sends a message that the sender
// writes, closes and hangs up on at once (Concord closes with FIN after a
// yamux go-away, so the message arrives).
//
//	go run ./example
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	concordlibp2p "github.com/concordp2p/concord/libp2p"
)

func newHost() (host.Host, error) {
	return libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		// The one option: go-libp2p's default transports with TCP
		// replaced by Concord's.
		concordlibp2p.Transports(),
	)
}

func main() {
	log.SetFlags(0)
	a, err := newHost()
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := newHost()
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	got := make(chan string, 1)
	b.SetStreamHandler("/example/1.0.0", func(s network.Stream) {
		msg, _ := io.ReadAll(s)
		_ = s.Close()
		got <- string(msg)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		log.Fatal(err)
	}
	c := a.Network().ConnsToPeer(b.ID())[0]
	st := c.ConnState()
	fmt.Printf("connected %s -> %s over %s, %s, %s (muxer inlined: %v)\n",
		c.LocalMultiaddr(), c.RemoteMultiaddr(), st.Transport, st.Security, st.StreamMultiplexer, st.UsedEarlyMuxerNegotiation)

	res := <-ping.Ping(ctx, a, b.ID())
	if res.Error != nil {
		log.Fatal(res.Error)
	}
	fmt.Println("ping ok")

	s, err := a.NewStream(ctx, b.ID(), "/example/1.0.0")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := s.Write([]byte("last words")); err != nil {
		log.Fatal(err)
	}
	_ = s.Close()
	_ = a.Network().ClosePeer(b.ID()) // hang up at once
	select {
	case m := <-got:
		fmt.Printf("b received %q after a hung up\n", m)
	case <-ctx.Done():
		log.Fatal("message lost")
	}
}
