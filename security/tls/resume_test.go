package tls

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// resumeRound runs one handshake over link, the client expecting want and
// the server expecting wantClient (either may be ""), then a byte from the
// server to the client, which carries the server's ticket, and reports
// whether each end resumed. A handshake error is returned as is.
func resumeRound(t *testing.T, link sectest.Link, client, server *Transport, want, wantClient peer.ID) (clientResumed, serverResumed bool, err error) {
	t.Helper()
	c1, c2 := link.Pair(t)
	ri, rr := sectest.Pair(t.Context(), client, server, c1, c2,
		security.Params{ExpectedPeer: want}, security.Params{ExpectedPeer: wantClient})
	if ri.Err != nil || rr.Err != nil {
		sectest.CloseAll(ri, rr)
		c1.Close()
		c2.Close()
		return false, false, errors.Join(ri.Err, rr.Err)
	}
	defer sectest.CloseAll(ri, rr)
	if ri.Conn.RemotePeer() != server.LocalPeer() || rr.Conn.RemotePeer() != client.LocalPeer() {
		t.Fatalf("peers: client sees %s (want %s), server sees %s (want %s)",
			ri.Conn.RemotePeer(), server.LocalPeer(), rr.Conn.RemotePeer(), client.LocalPeer())
	}
	errc := make(chan error, 1)
	go func() {
		_, err := rr.Conn.Write([]byte{7})
		errc <- err
	}()
	var b [1]byte
	if _, err := io.ReadFull(ri.Conn, b[:]); err != nil || b[0] != 7 {
		t.Fatalf("server's byte: %v %v", b, err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server write: %v", err)
	}
	return ri.Conn.(*Conn).ConnectionState().DidResume, rr.Conn.(*Conn).ConnectionState().DidResume, nil
}

// TestResumption: between Concord peers the second handshake resumes, on
// both ends, over a pipe and TCP; identities are those of the first.
func TestResumption(t *testing.T) {
	for _, link := range sectest.Links {
		t.Run(link.Name, func(t *testing.T) {
			server := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
			client := newTransport(t, sectest.Key(t, peer.ECDSA, 1), Config{})
			for i, want := range []bool{false, true, true} {
				cr, sr, err := resumeRound(t, link, client, server, server.LocalPeer(), client.LocalPeer())
				if err != nil {
					t.Fatalf("handshake %d: %v", i, err)
				}
				if cr != want || sr != want {
					t.Fatalf("handshake %d: resumed client %v, server %v; want %v", i, cr, sr, want)
				}
			}
		})
	}
}

// TestResumptionScope: a ticket is offered only to the peer ID that issued
// it; a server that lost its ticket keys (a restart) completes a full
// handshake; SessionCacheSize < 0 turns resumption off in both roles.
func TestResumptionScope(t *testing.T) {
	link := sectest.Links[1] // TCP: a refused client must not hang on a pipe
	serverKey := sectest.Key(t, peer.Ed25519, 0)
	server := newTransport(t, serverKey, Config{})
	client := newTransport(t, sectest.Key(t, peer.Ed25519, 1), Config{})
	if _, _, err := resumeRound(t, link, client, server, server.LocalPeer(), ""); err != nil {
		t.Fatal(err)
	}
	if n := client.sessions.len(); n != 1 {
		t.Fatalf("client keeps %d tickets after one handshake, want 1", n)
	}

	// Expecting another peer ID on the same server: no ticket offered,
	// and the mismatch is still found.
	other := sectest.IDOf(t, sectest.Key(t, peer.Ed25519, 2))
	_, _, err := resumeRound(t, link, client, server, other, "")
	var mm *security.PeerIDMismatchError
	if !errors.As(err, &mm) || mm.Got != server.LocalPeer() {
		t.Fatalf("dialing the server as another peer: %v, want a PeerIDMismatchError naming the server", err)
	}

	// The server restarted: same identity, new ticket keys.
	restarted := newTransport(t, serverKey, Config{})
	cr, sr, err := resumeRound(t, link, client, restarted, restarted.LocalPeer(), "")
	if err != nil || cr || sr {
		t.Fatalf("after the server's restart: resumed %v/%v, err %v; want a full handshake", cr, sr, err)
	}
	// ...and it issued a new ticket, which resumes.
	if cr, sr, err := resumeRound(t, link, client, restarted, restarted.LocalPeer(), ""); err != nil || !cr || !sr {
		t.Fatalf("second handshake with the restarted server: resumed %v/%v, err %v", cr, sr, err)
	}

	// Resumption off on the client: it neither keeps nor offers tickets.
	off := newTransport(t, sectest.Key(t, peer.Ed25519, 3), Config{SessionCacheSize: -1})
	for i := range 2 {
		if cr, sr, err := resumeRound(t, link, off, server, server.LocalPeer(), ""); err != nil || cr || sr {
			t.Fatalf("client with resumption off, handshake %d: resumed %v/%v, err %v", i, cr, sr, err)
		}
	}
	// Off on the server: it issues none, so the client never resumes.
	offServer := newTransport(t, sectest.Key(t, peer.Ed25519, 4), Config{SessionCacheSize: -1})
	fresh := newTransport(t, sectest.Key(t, peer.Ed25519, 5), Config{})
	for i := range 2 {
		if cr, sr, err := resumeRound(t, link, fresh, offServer, offServer.LocalPeer(), ""); err != nil || cr || sr {
			t.Fatalf("server with resumption off, handshake %d: resumed %v/%v, err %v", i, cr, sr, err)
		}
	}
	if n := fresh.sessions.len(); n != 0 {
		t.Errorf("client keeps %d tickets from a server with resumption off", n)
	}
}

// TestResumptionForeignTickets: a ticket from a server that is not
// Concord's (a bare crypto/tls server issuing its own tickets, as Node's
// would) is not kept, so it is never offered.
func TestResumptionForeignTickets(t *testing.T) {
	id := sectest.Key(t, peer.Ed25519, 2)
	cert := certSpec{identity: id}.make(t)
	client := newTransport(t, sectest.Key(t, peer.Ed25519, 0), Config{})
	for i := range 2 {
		c1, c2 := sectest.TCPPair(t)
		done := make(chan error, 1)
		go func() {
			defer c2.Close()
			srv := tls.Server(c2, &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{cert},
				ClientAuth:   tls.RequireAnyClientCert,
				NextProtos:   []string{alpnLibp2p},
			})
			if err := srv.Handshake(); err != nil {
				done <- err
				return
			}
			_, err := srv.Write([]byte{1})
			done <- err
			_, _ = io.Copy(io.Discard, srv)
		}()
		c, err := client.Handshake(context.Background(), c1, security.Params{Role: network.RoleInitiator, ExpectedPeer: sectest.IDOf(t, id)})
		if err != nil {
			t.Fatalf("handshake %d: %v", i, err)
		}
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			t.Fatalf("handshake %d: read: %v", i, err)
		}
		if c.(*Conn).ConnectionState().DidResume {
			t.Fatalf("handshake %d resumed a foreign server's session", i)
		}
		c.Close()
		if err := <-done; err != nil {
			t.Fatalf("handshake %d: server: %v", i, err)
		}
	}
	if n := client.sessions.len(); n != 0 {
		t.Errorf("client keeps %d foreign tickets, want 0", n)
	}
}

// TestTicketKeys: a key issues tickets for ticketKeyPeriod, the one before
// it still resumes, and a clock that went back starts a new key.
func TestTicketKeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k := &ticketKeys{now: func() time.Time { return now }}
	first, err := k.get()
	if err != nil || len(first) != 1 {
		t.Fatalf("first keys: %d, %v", len(first), err)
	}
	now = now.Add(ticketKeyPeriod - time.Second)
	if same, _ := k.get(); len(same) != 1 || same[0] != first[0] {
		t.Fatal("a key was replaced before its period ended")
	}
	now = now.Add(time.Second)
	second, _ := k.get()
	if len(second) != 2 || second[1] != first[0] || second[0] == first[0] {
		t.Fatalf("after a period: %d keys, want a new one then the old one", len(second))
	}
	now = now.Add(ticketKeyPeriod)
	third, _ := k.get()
	if len(third) != 2 || third[1] != second[0] {
		t.Fatal("after two periods: the oldest key is not the one dropped")
	}
	now = now.Add(-time.Hour)
	if back, _ := k.get(); back[0] == third[0] {
		t.Error("a clock that went back kept issuing with the same key")
	}
}
