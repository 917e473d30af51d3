package concordlibp2p

import (
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ttransport "github.com/libp2p/go-libp2p/p2p/transport/testsuite"
	ma "github.com/multiformats/go-multiaddr"
)

// runSuite runs go-libp2p's own transport suite (ttransport.Subtests:
// protocols, basic, cancel, ping-pong and the muxer stress tests) with ta
// listening and tb dialing, one subtest per function under its short name
// (SubtestTransport names them by import path, which -run cannot select).
func runSuite(t *testing.T, ta, tb transport.Transport, peerA lpeer.ID) {
	maddr := ma.StringCast("/ip4/127.0.0.1/tcp/0")
	for _, f := range ttransport.Subtests {
		name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
		name = name[strings.LastIndex(name, ".")+1:]
		t.Run(name, func(t *testing.T) { f(t, ta, tb, maddr, peerA) })
	}
}

// suiteOpts are the transport options of the suite runs: the security
// protocol, and 30 s instead of 10 s for the handshake timeout and for
// yamux's ping timeout (which is also its connection write timeout).
// SubtestStressManyConn10Stream50Msg runs 50 connections at once, and
// under the race detector on a shared two-core machine (load average
// about 5) its TLS run once hit each 10 s bound: two handshakes timed
// out, and in another run sessions closed with "keepalive timeout" and
// "connection write timed out". Alone it passes in about 3 s per run.
// The suite is about the transport's behaviour, not these bounds, which
// the netlab tests cover.
func suiteOpts(sec string) Option {
	return func(c *Config) {
		c.Upgrader.Security.Protocols = []string{sec}
		c.Upgrader.HandshakeTimeout = 30 * time.Second
		c.Upgrader.Muxer.Yamux.PingTimeout = 30 * time.Second
	}
}

func TestSuiteConcordBothEnds(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		t.Run(strings.Split(sec, "/")[1], func(t *testing.T) {
			ta, peerA := concordTransport(t, suiteOpts(sec))
			tb, _ := concordTransport(t, suiteOpts(sec))
			runSuite(t, ta, tb, peerA)
		})
	}
}

// The suite with one end go-libp2p's stock TCP transport, each end
// listening in turn. Every subtest applies: SubtestProtocols compares the
// two transports' Protocols, which agree (TCP).
func TestSuiteMixed(t *testing.T) {
	for _, sec := range []string{noise.ID, libp2ptls.ID} {
		t.Run(strings.Split(sec, "/")[1]+"/concord listens", func(t *testing.T) {
			ta, peerA := concordTransport(t, suiteOpts(sec))
			tb, _ := stockTransport(t, sec)
			runSuite(t, ta, tb, peerA)
		})
		t.Run(strings.Split(sec, "/")[1]+"/stock listens", func(t *testing.T) {
			ta, peerA := stockTransport(t, sec)
			tb, _ := concordTransport(t, suiteOpts(sec))
			runSuite(t, ta, tb, peerA)
		})
	}
}
