package noise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
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

// TestHandshake runs every identity key type against every other over an
// in-memory pipe and loopback TCP, with and without the expected peer ID,
// and checks what each side reports.
func TestHandshake(t *testing.T) {
	for _, link := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
	}{{"pipe", pipePair}, {"tcp", tcpPair}} {
		for _, kti := range keyTypes {
			for _, ktr := range keyTypes {
				for _, expect := range []bool{false, true} {
					name := fmt.Sprintf("%s/%v-%v/expect=%v", link.name, kti, ktr, expect)
					t.Run(name, func(t *testing.T) {
						ki, kr := testKey(t, kti, 0), testKey(t, ktr, 1)
						ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
						pi := security.Params{Muxers: []string{"/yamux/1.0.0"}}
						pr := security.Params{Muxers: []string{"/yamux/1.0.0"}}
						if expect {
							pi.ExpectedPeer, pr.ExpectedPeer = idOf(t, kr), idOf(t, ki)
						}
						c1, c2 := link.pair(t)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						ri, rr := handshakePair(ctx, ti, tr, c1, c2, pi, pr)
						defer closeBoth(ri, rr)
						if ri.err != nil || rr.err != nil {
							t.Fatalf("handshake: initiator err %v, responder err %v", ri.err, rr.err)
						}
						checkConn(t, "initiator", ri.conn, idOf(t, ki), kr, "/yamux/1.0.0")
						checkConn(t, "responder", rr.conn, idOf(t, kr), ki, "/yamux/1.0.0")
						exchange(t, ri.conn, rr.conn)
					})
				}
			}
		}
	}
}

func checkConn(t *testing.T, side string, c security.Conn, local peer.ID, remote peer.PrivKey, muxer string) {
	t.Helper()
	if got := c.LocalPeer(); got != local {
		t.Errorf("%s: LocalPeer = %s, want %s", side, got, local)
	}
	if got, want := c.RemotePeer(), idOf(t, remote); got != want {
		t.Errorf("%s: RemotePeer = %s, want %s", side, got, want)
	}
	if !c.RemotePublicKey().Equal(remote.Public()) {
		t.Errorf("%s: RemotePublicKey is not the remote identity key", side)
	}
	if got := c.Protocol(); got != ID {
		t.Errorf("%s: Protocol = %q, want %q", side, got, ID)
	}
	if got := c.Muxer(); got != muxer {
		t.Errorf("%s: Muxer = %q, want %q", side, got, muxer)
	}
}

// exchange sends a message each way and checks it arrives intact.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, dir := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "ping from the initiator"}, {b, a, "pong from the responder"}} {
		errc := make(chan error, 1)
		go func() {
			_, err := dir.from.Write([]byte(dir.msg))
			errc <- err
		}()
		buf := make([]byte, len(dir.msg))
		if _, err := io.ReadFull(dir.to, buf); err != nil {
			t.Fatalf("reading: %v", err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("writing: %v", err)
		}
		if string(buf) != dir.msg {
			t.Fatalf("read %q, want %q", buf, dir.msg)
		}
	}
}

func TestMuxerNegotiation(t *testing.T) {
	for _, tc := range muxerCases {
		t.Run(tc.name, func(t *testing.T) {
			ki, kr := testKey(t, peer.Ed25519, 0), testKey(t, peer.Ed25519, 1)
			ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
			c1, c2 := net.Pipe()
			ri, rr := handshakePair(context.Background(), ti, tr, c1, c2,
				security.Params{Muxers: tc.init}, security.Params{Muxers: tc.rsp})
			defer closeBoth(ri, rr)
			if tc.wantErr != nil {
				// The initiator learns both lists first and refuses to
				// finish; the responder then sees the connection end.
				if !errors.Is(ri.err, tc.wantErr) {
					t.Fatalf("initiator error = %v, want %v", ri.err, tc.wantErr)
				}
				var he *security.HandshakeError
				if !errors.As(ri.err, &he) || he.Step != stepMuxer {
					t.Errorf("initiator error %v: want a HandshakeError at step %q", ri.err, stepMuxer)
				}
				if rr.err == nil {
					t.Errorf("responder error = nil, want the handshake to fail")
				}
				assertClosed(t, "initiator raw conn", c1)
				assertClosed(t, "responder raw conn", c2)
				return
			}
			if ri.err != nil || rr.err != nil {
				t.Fatalf("handshake: initiator err %v, responder err %v", ri.err, rr.err)
			}
			if ri.conn.Muxer() != tc.want || rr.conn.Muxer() != tc.want {
				t.Errorf("muxer: initiator %q, responder %q, want %q on both", ri.conn.Muxer(), rr.conn.Muxer(), tc.want)
			}
		})
	}
}

// TestAgreeMuxerResponderSide checks the responder's own verdict on
// disjoint lists (the initiator normally fails first).
func TestAgreeMuxer(t *testing.T) {
	for _, tc := range muxerCases {
		got, err := agreeMuxer(tc.init, tc.rsp)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: agreeMuxer = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
