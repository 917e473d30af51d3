package simopen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/concordp2p/concord/internal/netlab"
	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen"
)

// TestRealSimultaneousOpenAgainstReference: Concord on one end and
// go-multistream v0.4.1 SelectWithSimopenOrFail on the other end of real
// TCP simultaneous opens (network namespaces, no listener: a run can only
// succeed as a simultaneous open). Concord's number alternates between the
// largest and the smallest, so each side initiates half the time.
func TestRealSimultaneousOpenAgainstReference(t *testing.T) {
	p := netlab.NewPair(t)
	ref := references[1]
	if ref.name != "v0.4.1" {
		t.Fatalf("references[1] is %s, want v0.4.1", ref.name)
	}
	const runs = 6
	for i := range runs {
		port := uint16(42000 + i)
		var ca, cb net.Conn
		dial := func(from, to netip.Addr, out *net.Conn) func(context.Context) error {
			return func(ctx context.Context) error {
				d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(from, port))}
				c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(to, port).String())
				*out = c
				return err
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if err := p.SimultaneousOpen(ctx, dial(p.A.Addr, p.B.Addr, &ca), dial(p.B.Addr, p.A.Addr, &cb)); err != nil {
			cancel()
			t.Fatalf("run %d: simultaneous open: %v", i, err)
		}
		n := uint64(0)
		if i%2 == 0 {
			n = ^uint64(0)
		}
		refc := make(chan end, 1)
		go func() {
			role, proto, err := refDialer(ref, []string{"/noise", "/tls/1.0.0"})(cb)
			if err == nil {
				err = stub(role, cb)
			}
			refc <- end{role, proto, err}
		}()
		res, conn, err := simopen.Dial(ctx, ca, simopen.Config{Protocols: []string{"/noise", "/tls/1.0.0"}, Rand: nonce(n)})
		if err == nil {
			err = stub(res.Role, conn)
		}
		if err != nil {
			ca.Close() // unblocks the reference
		}
		c, r := end{res.Role, res.Protocol, err}, <-refc
		cancel()
		ca.Close()
		cb.Close()
		t.Run(fmt.Sprintf("run-%d", i), func(t *testing.T) { check(t, c, r, "/noise") })
		if want := map[bool]network.Role{true: network.RoleInitiator, false: network.RoleResponder}[i%2 == 0]; c.role != want {
			t.Errorf("run %d: concord role %v, want %v", i, c.role, want)
		}
	}
}
