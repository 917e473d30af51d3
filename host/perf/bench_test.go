package perf

import (
	"context"
	"net"
	"testing"

	"github.com/concordp2p/concord/muxer/yamux"
	"github.com/concordp2p/concord/network"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(b *testing.B) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// BenchmarkDownload measures a perf download of b.N blocks in one run,
// over bare loopback TCP and over yamux (unsecured) on loopback TCP.
func BenchmarkDownload(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		c, s := tcpPair(b)
		benchRun(b, c.(*net.TCPConn), s.(*net.TCPConn))
	})
	b.Run("yamux-over-tcp", func(b *testing.B) {
		c, s := tcpPair(b)
		m, err := yamux.New(yamux.Config{})
		if err != nil {
			b.Fatal(err)
		}
		cs, err := m.NewSession(c, network.RoleInitiator)
		if err != nil {
			b.Fatal(err)
		}
		defer cs.Close()
		ss, err := m.NewSession(s, network.RoleResponder)
		if err != nil {
			b.Fatal(err)
		}
		defer ss.Close()
		ctx := context.Background()
		cst, err := cs.OpenStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sst, err := ss.AcceptStream(ctx)
		if err != nil {
			b.Fatal(err)
		}
		benchRun(b, cst, sst)
	})
}

func benchRun(b *testing.B, c, s Stream) {
	done := make(chan error, 1)
	go func() { done <- Server{MaxDownload: ^uint64(0)}.Serve(context.Background(), s) }()
	b.SetBytes(BlockSize)
	b.ReportAllocs()
	b.ResetTimer()
	res, err := Run(context.Background(), c, 0, uint64(b.N)*BlockSize, nil)
	b.StopTimer()
	if err != nil || res.Downloaded != uint64(b.N)*BlockSize {
		b.Fatalf("Run: %+v, %v", res, err)
	}
	if err := <-done; err != nil {
		b.Fatalf("Serve: %v", err)
	}
}
