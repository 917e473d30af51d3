package simopen

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/simopen/simopentest"
	"github.com/multiformats/go-multistream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// stub runs a one-message-each-way exchange in the given role, to prove
// the conn after the stage carries the handshake intact.
func stub(role network.Role, c io.ReadWriter) error {
	buf := make([]byte, 4)
	if role == network.RoleInitiator {
		if _, err := c.Write([]byte("msg1")); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != "msg2" {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "msg1" {
		return io.ErrUnexpectedEOF
	}
	_, err := c.Write([]byte("msg2"))
	return err
}

type end struct {
	role  network.Role
	proto string
	err   error
}

// order says which side's opening write goes out first.
type order int

const (
	anyOrder       order = iota
	concordFirst         // the reference starts once Concord's opening write is out
	referenceFirst       // Concord starts once the reference's opening write is out
)

// firstWrite is a conn that closes wrote after its first Write.
type firstWrite struct {
	net.Conn
	once  sync.Once
	wrote chan struct{}
}

func (c *firstWrite) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.once.Do(func() { close(c.wrote) })
	return n, err
}

func run(t *testing.T, concord func(context.Context, net.Conn) (simopen.Result, net.Conn, error),
	ref func(net.Conn) (network.Role, string, error)) (c, r end) {
	t.Helper()
	return runOrdered(t, concord, ref, anyOrder)
}

func runOrdered(t *testing.T, concord func(context.Context, net.Conn) (simopen.Result, net.Conn, error),
	ref func(net.Conn) (network.Role, string, error), o order) (c, r end) {
	t.Helper()
	pa, pb := simopentest.Pipe(0)
	defer pa.Close()
	defer pb.Close()
	ca := &firstWrite{Conn: pa, wrote: make(chan struct{})}
	cb := &firstWrite{Conn: pb, wrote: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	refc := make(chan end, 1)
	go func() {
		if o == concordFirst {
			<-ca.wrote
		}
		role, proto, err := ref(cb)
		if err == nil {
			err = stub(role, cb)
		} else {
			cb.Close()
		}
		refc <- end{role, proto, err}
	}()
	if o == referenceFirst {
		<-cb.wrote
	}
	res, conn, err := concord(ctx, ca)
	if err == nil {
		err = stub(res.Role, conn)
	} else {
		ca.Close()
	}
	return end{res.Role, res.Protocol, err}, <-refc
}

func check(t *testing.T, c, r end, proto string) {
	t.Helper()
	if c.err != nil || r.err != nil {
		t.Fatalf("concord: %v; reference: %v", c.err, r.err)
	}
	if c.role == r.role || c.role == network.RoleUnknown || r.role == network.RoleUnknown {
		t.Fatalf("roles concord %v, reference %v: want exactly one initiator", c.role, r.role)
	}
	if c.proto != proto || r.proto != proto {
		t.Fatalf("protocols concord %q, reference %q, want %q", c.proto, r.proto, proto)
	}
}

// TestConcordDialerV06Listener: the "na" path against go-multistream v0.6.
func TestConcordDialerV06Listener(t *testing.T) {
	for _, tc := range []struct {
		ours, theirs []string
		want         string
	}{
		{[]string{"/noise", "/tls/1.0.0"}, []string{"/tls/1.0.0", "/noise"}, "/noise"},
		{[]string{"/yamux-only", "/tls/1.0.0"}, []string{"/noise", "/tls/1.0.0"}, "/tls/1.0.0"},
	} {
		c, r := run(t,
			func(ctx context.Context, conn net.Conn) (simopen.Result, net.Conn, error) {
				return simopen.Dial(ctx, conn, simopen.Config{Protocols: tc.ours})
			},
			func(conn net.Conn) (network.Role, string, error) {
				mux := multistream.NewMultistreamMuxer[string]()
				for _, p := range tc.theirs {
					mux.AddHandler(p, nil)
				}
				p, _, err := mux.Negotiate(conn)
				return network.RoleResponder, p, err
			})
		check(t, c, r, tc.want)
		if c.role != network.RoleInitiator {
			t.Errorf("concord dialer role %v, want initiator", c.role)
		}
	}
}

// TestV06DialerConcordListener: go-libp2p's plain dialer against Accept.
func TestV06DialerConcordListener(t *testing.T) {
	c, r := run(t,
		func(ctx context.Context, conn net.Conn) (simopen.Result, net.Conn, error) {
			return simopen.Accept(ctx, conn, simopen.Config{Protocols: []string{"/tls/1.0.0", "/noise"}})
		},
		func(conn net.Conn) (network.Role, string, error) {
			p, err := multistream.SelectOneOf([]string{"/noise", "/tls/1.0.0"}, conn)
			return network.RoleInitiator, p, err
		})
	check(t, c, r, "/noise")
}
