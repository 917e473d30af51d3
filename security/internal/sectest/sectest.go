// Package sectest is the test suite every security.Transport runs: each
// identity key type against each other, over an in-memory pipe and over
// loopback TCP, with and without the expected peer ID, with overlapping,
// disjoint and empty muxer lists, and net.Conn conformance of the secured
// connection. It also holds the helpers those tests share.
package sectest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
)

// KeyTypes are the identity key types the suite covers.
var KeyTypes = []peer.KeyType{peer.Ed25519, peer.Secp256k1, peer.ECDSA, peer.RSA}

var keys sync.Map

// Key returns identity key number i of type kt, generated once per test
// binary (RSA generation is slow).
func Key(t testing.TB, kt peer.KeyType, i int) peer.PrivKey {
	t.Helper()
	type k struct {
		kt peer.KeyType
		i  int
	}
	if v, ok := keys.Load(k{kt, i}); ok {
		return v.(peer.PrivKey)
	}
	priv, err := peer.GenerateKey(kt, nil)
	if err != nil {
		t.Fatalf("GenerateKey(%v): %v", kt, err)
	}
	v, _ := keys.LoadOrStore(k{kt, i}, priv)
	return v.(peer.PrivKey)
}

// IDOf is the peer ID of priv.
func IDOf(t testing.TB, priv peer.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Result is one side's handshake outcome.
type Result struct {
	Conn security.Conn
	Err  error
}

// Pair runs the initiator on c1 and the responder on c2 and returns both
// results. Each side's Role is set here.
func Pair(ctx context.Context, ti, tr security.Transport, c1, c2 net.Conn, pi, pr security.Params) (ri, rr Result) {
	pi.Role, pr.Role = network.RoleInitiator, network.RoleResponder
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rr.Conn, rr.Err = tr.Handshake(ctx, c2, pr)
	}()
	ri.Conn, ri.Err = ti.Handshake(ctx, c1, pi)
	wg.Wait()
	return ri, rr
}

// CloseAll closes the connections of the results that have one, all at
// once: over a synchronous pipe a close_notify waits for the peer's read.
func CloseAll(rs ...Result) {
	var wg sync.WaitGroup
	for _, r := range rs {
		if r.Conn != nil {
			wg.Go(func() { r.Conn.Close() })
		}
	}
	wg.Wait()
}

// Link makes the two ends of a raw connection.
type Link struct {
	Name string
	Pair func(testing.TB) (net.Conn, net.Conn)
}

// Links are the in-memory pipe and loopback TCP.
var Links = []Link{{"pipe", PipePair}, {"tcp", TCPPair}}

// PipePair is net.Pipe.
func PipePair(testing.TB) (net.Conn, net.Conn) { return net.Pipe() }

// TCPPair returns the two ends of a loopback TCP connection.
func TCPPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type acc struct {
		c   net.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() {
		c, err := ln.Accept()
		ch <- acc{c, err}
	}()
	c1, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-ch
	if a.err != nil {
		c1.Close()
		t.Fatal(a.err)
	}
	return c1, a.c
}

// AssertClosed checks that c was closed: a write fails with a
// closed-connection error.
func AssertClosed(t testing.TB, name string, c net.Conn) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Write([]byte{0})
	if err == nil || !(errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrClosedPipe)) {
		t.Errorf("%s: write after failed handshake: got %v, want a closed-connection error", name, err)
	}
}

// Exchange sends a message each way and checks that it arrives intact.
func Exchange(t testing.TB, a, b net.Conn) {
	t.Helper()
	for _, d := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "ping from the initiator"}, {b, a, "pong from the responder"}} {
		errc := make(chan error, 1)
		go func() {
			_, err := d.from.Write([]byte(d.msg))
			errc <- err
		}()
		buf := make([]byte, len(d.msg))
		if _, err := io.ReadFull(d.to, buf); err != nil {
			t.Fatalf("reading %q: %v", d.msg, err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("writing %q: %v", d.msg, err)
		}
		if string(buf) != d.msg {
			t.Fatalf("read %q, want %q", buf, d.msg)
		}
	}
}

// CheckConn checks what a secured connection reports.
func CheckConn(t testing.TB, side string, c security.Conn, protocol string, local peer.ID, remote peer.PrivKey, muxer string) {
	t.Helper()
	if got := c.LocalPeer(); got != local {
		t.Errorf("%s: LocalPeer = %s, want %s", side, got, local)
	}
	if got, want := c.RemotePeer(), IDOf(t, remote); got != want {
		t.Errorf("%s: RemotePeer = %s, want %s", side, got, want)
	}
	if k := c.RemotePublicKey(); k == nil || !k.Equal(remote.Public()) {
		t.Errorf("%s: RemotePublicKey is not the remote identity key", side)
	}
	if got := c.Protocol(); got != protocol {
		t.Errorf("%s: Protocol = %q, want %q", side, got, protocol)
	}
	if got := c.Muxer(); got != muxer {
		t.Errorf("%s: Muxer = %q, want %q", side, got, muxer)
	}
}

// MuxerCase is one pair of offered muxer lists.
type MuxerCase struct {
	Name      string
	Init, Rsp []string
	// Want is the muxer both sides report; WantErr, when set, the error
	// the initiator fails with instead (the responder must fail too).
	Want    string
	WantErr error
}

// MuxerCases are the suite's muxer lists. The disjoint case's outcome
// differs per protocol and is given by the caller.
func MuxerCases(disjoint MuxerCase) []MuxerCase {
	disjoint.Name = "disjoint"
	disjoint.Init, disjoint.Rsp = []string{"/yamux/1.0.0"}, []string{"/mplex/6.7.0"}
	return []MuxerCase{
		{Name: "overlap, initiator's preference wins", Init: []string{"/yamux/1.0.0", "/mplex/6.7.0"}, Rsp: []string{"/mplex/6.7.0", "/yamux/1.0.0"}, Want: "/yamux/1.0.0"},
		{Name: "spec example", Init: []string{"/yamux/1.0.0", "/mplex/6.7.0"}, Rsp: []string{"/mplex/6.7.0"}, Want: "/mplex/6.7.0"},
		{Name: "both empty"},
		{Name: "initiator empty", Rsp: []string{"/yamux/1.0.0"}},
		{Name: "responder empty", Init: []string{"/yamux/1.0.0"}},
		disjoint,
	}
}

// Suite describes the transport under test.
type Suite struct {
	Protocol string
	New      func(t testing.TB, id peer.PrivKey) security.Transport
	Disjoint MuxerCase
}

// Run runs the whole suite.
func (s Suite) Run(t *testing.T) {
	t.Run("KeyMatrix", s.keyMatrix)
	t.Run("Muxers", s.muxers)
	t.Run("Nettest", s.nettest)
}

func (s Suite) keyMatrix(t *testing.T) {
	for _, link := range Links {
		for _, kti := range KeyTypes {
			for _, ktr := range KeyTypes {
				for _, expect := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%v-%v/expect=%v", link.Name, kti, ktr, expect), func(t *testing.T) {
						ki, kr := Key(t, kti, 0), Key(t, ktr, 1)
						pi := security.Params{Muxers: []string{"/yamux/1.0.0"}}
						pr := security.Params{Muxers: []string{"/yamux/1.0.0"}}
						if expect {
							pi.ExpectedPeer, pr.ExpectedPeer = IDOf(t, kr), IDOf(t, ki)
						}
						c1, c2 := link.Pair(t)
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						ri, rr := Pair(ctx, s.New(t, ki), s.New(t, kr), c1, c2, pi, pr)
						defer CloseAll(ri, rr)
						if ri.Err != nil || rr.Err != nil {
							t.Fatalf("handshake: initiator err %v, responder err %v", ri.Err, rr.Err)
						}
						CheckConn(t, "initiator", ri.Conn, s.Protocol, IDOf(t, ki), kr, "/yamux/1.0.0")
						CheckConn(t, "responder", rr.Conn, s.Protocol, IDOf(t, kr), ki, "/yamux/1.0.0")
						Exchange(t, ri.Conn, rr.Conn)
					})
				}
			}
		}
	}
}

func (s Suite) muxers(t *testing.T) {
	for _, tc := range MuxerCases(s.Disjoint) {
		t.Run(tc.Name, func(t *testing.T) {
			ki, kr := Key(t, peer.Ed25519, 0), Key(t, peer.Ed25519, 1)
			c1, c2 := net.Pipe()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ri, rr := Pair(ctx, s.New(t, ki), s.New(t, kr), c1, c2, security.Params{Muxers: tc.Init}, security.Params{Muxers: tc.Rsp})
			defer CloseAll(ri, rr)
			if tc.WantErr != nil {
				if !errors.Is(ri.Err, tc.WantErr) {
					t.Fatalf("initiator error = %v, want %v", ri.Err, tc.WantErr)
				}
				if rr.Err == nil {
					t.Errorf("responder error = nil, want the handshake to fail")
				}
				AssertClosed(t, "initiator raw conn", c1)
				AssertClosed(t, "responder raw conn", c2)
				return
			}
			if ri.Err != nil || rr.Err != nil {
				t.Fatalf("handshake: initiator err %v, responder err %v", ri.Err, rr.Err)
			}
			if ri.Conn.Muxer() != tc.Want || rr.Conn.Muxer() != tc.Want {
				t.Errorf("muxer: initiator %q, responder %q, want %q on both", ri.Conn.Muxer(), rr.Conn.Muxer(), tc.Want)
			}
			Exchange(t, ri.Conn, rr.Conn)
		})
	}
}

// SecurePair returns both ends of a secured connection over link.
func (s Suite) SecurePair(t testing.TB, link Link) (security.Conn, security.Conn, func()) {
	t.Helper()
	c1, c2 := link.Pair(t)
	ki, kr := Key(t, peer.Ed25519, 0), Key(t, peer.Ed25519, 1)
	ri, rr := Pair(context.Background(), s.New(t, ki), s.New(t, kr), c1, c2, security.Params{}, security.Params{})
	if ri.Err != nil || rr.Err != nil {
		CloseAll(ri, rr)
		t.Fatalf("handshake: %v, %v", ri.Err, rr.Err)
	}
	return ri.Conn, rr.Conn, func() { CloseAll(ri, rr) }
}

func (s Suite) nettest(t *testing.T) {
	for _, link := range Links {
		t.Run(link.Name, func(t *testing.T) {
			nettest.TestConn(t, func() (net.Conn, net.Conn, func(), error) {
				a, b, stop := s.SecurePair(t, link)
				return a, b, stop, nil
			})
		})
	}
}
