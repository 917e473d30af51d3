package security

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	lpcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lppeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	lpnoise "github.com/libp2p/go-libp2p/p2p/security/noise"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/noise"
)

func lpProtocol(s string) protocol.ID { return protocol.ID(s) }

// muxerCases are the inlined muxer lists of both sides and the muxer both
// must report.
var muxerCases = []struct {
	name      string
	ours, lps []string
	want      func(ourRole network.Role) string
}{
	{"same", []string{"/yamux/1.0.0"}, []string{"/yamux/1.0.0"}, func(network.Role) string { return "/yamux/1.0.0" }},
	{"preference", []string{"/yamux/1.0.0", "/mplex/6.7.0"}, []string{"/mplex/6.7.0", "/yamux/1.0.0"}, func(r network.Role) string {
		// The initiator's first choice wins.
		if r == network.RoleInitiator {
			return "/yamux/1.0.0"
		}
		return "/mplex/6.7.0"
	}},
	{"ours empty", nil, []string{"/yamux/1.0.0"}, func(network.Role) string { return "" }},
	{"theirs empty", []string{"/yamux/1.0.0"}, nil, func(network.Role) string { return "" }},
}

func TestNoise(t *testing.T) {
	for _, link := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
	}{{"pipe", pipePair}, {"tcp", tcpPair}} {
		for _, ourKT := range keyTypes {
			for _, lpKT := range keyTypes {
				for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
					for _, mc := range muxerCases {
						if link.name == "tcp" && mc.name != "preference" {
							continue // TCP once per key pair and role is enough
						}
						name := fmt.Sprintf("%s/concord-%s-%s/go-libp2p-%s/%s", link.name, keyTypeName(ourKT), role, keyTypeName(lpKT), mc.name)
						t.Run(name, func(t *testing.T) {
							testNoise(t, link.pair, ourKT, lpKT, role, mc.ours, mc.lps, mc.want(role))
						})
					}
				}
			}
		}
	}
}

func testNoise(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn), ourKT, lpKT int, role network.Role, ourMuxers, lpMux []string, want string) {
	me, them := newIdentity(t, ourKT, 0), newIdentity(t, lpKT, 1)
	ours, err := noise.New(me.ours, noise.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := lpnoise.New(lpnoise.ID, them.lp, lpMuxers(lpMux))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, c2 := pair(t)
	o := run(ctx, ours, lp, role, them.id, lppeer.ID(me.id), ourMuxers, c1, c2)
	defer o.close()
	if o.oursErr != nil || o.lpErr != nil {
		t.Fatalf("handshake: Concord err %v, go-libp2p err %v", o.oursErr, o.lpErr)
	}
	checkBoth(t, o, me, them, want)
}

// checkBoth checks the peer IDs and keys each side sees, the muxer each
// reports, and that data flows both ways.
func checkBoth(t *testing.T, o outcome, me, them identity, want string) {
	t.Helper()
	if got := o.oursConn.RemotePeer(); got != them.id {
		t.Errorf("Concord sees remote %s, want %s", got, them.id)
	}
	if got := o.oursConn.LocalPeer(); got != me.id {
		t.Errorf("Concord's LocalPeer %s, want %s", got, me.id)
	}
	if got := o.lpConn.RemotePeer(); string(got) != string(me.id) {
		t.Errorf("go-libp2p sees remote %s, want %s", got, me.id)
	}
	if !lpcrypto.KeyEqual(o.lpConn.RemotePublicKey(), me.lp.GetPublic()) {
		t.Errorf("go-libp2p's RemotePublicKey is not Concord's identity key")
	}
	raw, err := o.oursConn.RemotePublicKey().Raw()
	lpRaw, _ := them.lp.GetPublic().Raw()
	if err != nil || string(raw) != string(lpRaw) {
		t.Errorf("Concord's RemotePublicKey is not go-libp2p's identity key (err %v)", err)
	}
	if got := o.oursConn.Muxer(); got != want {
		t.Errorf("Concord reports muxer %q, want %q", got, want)
	}
	if got := string(o.lpConn.ConnState().StreamMultiplexer); got != want {
		t.Errorf("go-libp2p reports muxer %q, want %q", got, want)
	}
	if got := o.lpConn.ConnState().UsedEarlyMuxerNegotiation; got != (want != "") {
		t.Errorf("go-libp2p UsedEarlyMuxerNegotiation = %v, want %v", got, want != "")
	}
	pingPong(t, o.oursConn, o.lpConn)
}

func pingPong(t *testing.T, a, b net.Conn) {
	t.Helper()
	for _, d := range []struct {
		from, to net.Conn
		msg      string
	}{{a, b, "from Concord"}, {b, a, "from go-libp2p"}} {
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

// TestNoiseDisjointMuxers pins the one deliberate difference: go-libp2p
// falls back to multistream-select on disjoint muxer lists, Concord fails
// the handshake as the inlined-muxer spec requires.
func TestNoiseDisjointMuxers(t *testing.T) {
	for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
		t.Run(role.String(), func(t *testing.T) {
			me, them := newIdentity(t, lpcrypto.Ed25519, 0), newIdentity(t, lpcrypto.Ed25519, 1)
			ours, _ := noise.New(me.ours, noise.Config{})
			lp, _ := lpnoise.New(lpnoise.ID, them.lp, lpMuxers([]string{"/mplex/6.7.0"}))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c1, c2 := net.Pipe()
			o := run(ctx, ours, lp, role, them.id, lppeer.ID(me.id), []string{"/yamux/1.0.0"}, c1, c2)
			defer o.close()
			if !errors.Is(o.oursErr, security.ErrNoCommonMuxer) {
				t.Errorf("Concord error %v, want ErrNoCommonMuxer", o.oursErr)
			}
		})
	}
}

// TestNoiseWrongPeer: go-libp2p's identity is not the one Concord expects.
func TestNoiseWrongPeer(t *testing.T) {
	me, them, other := newIdentity(t, lpcrypto.Ed25519, 0), newIdentity(t, lpcrypto.Ed25519, 1), newIdentity(t, lpcrypto.Secp256k1, 2)
	ours, _ := noise.New(me.ours, noise.Config{})
	lp, _ := lpnoise.New(lpnoise.ID, them.lp, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c1, c2 := net.Pipe()
	o := run(ctx, ours, lp, network.RoleInitiator, other.id, "", nil, c1, c2)
	defer o.close()
	var me2 *security.PeerIDMismatchError
	if !errors.As(o.oursErr, &me2) || me2.Got != them.id || me2.Expected != other.id {
		t.Errorf("Concord error %v, want a PeerIDMismatchError{Expected %s, Got %s}", o.oursErr, other.id, them.id)
	}
}
