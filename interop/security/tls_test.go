package security

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	lppeer "github.com/libp2p/go-libp2p/core/peer"
	lptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/security/tls"
)

// tlsMuxerCases are Noise's cases plus disjoint lists, which over TLS fall
// back to "libp2p" on both implementations.
var tlsMuxerCases = append(muxerCases[:len(muxerCases):len(muxerCases)], struct {
	name      string
	ours, lps []string
	want      func(ourRole network.Role) string
}{"disjoint", []string{"/yamux/1.0.0"}, []string{"/mplex/6.7.0"}, func(network.Role) string { return "" }})

func TestTLS(t *testing.T) {
	for _, link := range []struct {
		name string
		pair func(testing.TB) (net.Conn, net.Conn)
	}{{"pipe", pipePair}, {"tcp", tcpPair}} {
		for _, ourKT := range keyTypes {
			for _, lpKT := range keyTypes {
				for _, role := range []network.Role{network.RoleInitiator, network.RoleResponder} {
					for _, mc := range tlsMuxerCases {
						if link.name == "tcp" && mc.name != "preference" {
							continue
						}
						name := fmt.Sprintf("%s/concord-%s-%s/go-libp2p-%s/%s", link.name, keyTypeName(ourKT), role, keyTypeName(lpKT), mc.name)
						t.Run(name, func(t *testing.T) {
							testTLS(t, link.pair, ourKT, lpKT, role, mc.ours, mc.lps, mc.want(role))
						})
					}
				}
			}
		}
	}
}

func testTLS(t *testing.T, pair func(testing.TB) (net.Conn, net.Conn), ourKT, lpKT int, role network.Role, ourMuxers, lpMux []string, want string) {
	me, them := newIdentity(t, ourKT, 0), newIdentity(t, lpKT, 1)
	ours, err := tls.New(me.ours, tls.Config{})
	if err != nil {
		t.Fatal(err)
	}
	lp, err := lptls.New(lptls.ID, them.lp, lpMuxers(lpMux))
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
