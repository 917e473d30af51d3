package echo

import (
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/host/internal/streamtest"
	"github.com/concordp2p/concord/muxer"
)

// Both kinds of stream the package documents satisfy Stream.
var (
	_ Stream = muxer.Stream(nil)
	_ Stream = (*net.TCPConn)(nil)
)

func streamPair(t testing.TB, delay time.Duration) (client, server muxer.Stream) {
	return streamtest.StreamPair(t, delay)
}

func newFakeStream(in []byte) *streamtest.FakeStream { return streamtest.NewFakeStream(in) }
