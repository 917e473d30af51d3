package simopen

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/simopen"
	"github.com/concordp2p/concord/simopen/simopentest"
	ms022 "ref.concord.invalid/go-multistream-0.2.2"
	ms041 "ref.concord.invalid/go-multistream-0.4.1"
)

// reference is one version of go-multistream's simopen code.
type reference struct {
	name string
	// dial is SelectWithSimopenOrFail.
	dial func(protos []string, rwc io.ReadWriteCloser) (string, bool, error)
	// listen is that version's MultistreamMuxer.Negotiate.
	listen func(protos []string, rwc io.ReadWriteCloser) (string, error)
}

var references = []reference{
	{
		name: "v0.2.2",
		dial: ms022.SelectWithSimopenOrFail,
		listen: func(protos []string, rwc io.ReadWriteCloser) (string, error) {
			mux := ms022.NewMultistreamMuxer()
			for _, p := range protos {
				mux.AddHandler(p, nil)
			}
			p, _, err := mux.Negotiate(rwc)
			return p, err
		},
	},
	{
		name: "v0.4.1",
		dial: ms041.SelectWithSimopenOrFail[string],
		listen: func(protos []string, rwc io.ReadWriteCloser) (string, error) {
			mux := ms041.NewMultistreamMuxer[string]()
			for _, p := range protos {
				mux.AddHandler(p, nil)
			}
			p, _, err := mux.Negotiate(rwc)
			return p, err
		},
	},
}

func nonce(n uint64) io.Reader {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	return bytes.NewReader(b[:])
}

func refDialer(ref reference, protos []string) func(net.Conn) (network.Role, string, error) {
	return func(c net.Conn) (network.Role, string, error) {
		p, isServer, err := ref.dial(protos, c)
		if isServer {
			return network.RoleResponder, p, err
		}
		return network.RoleInitiator, p, err
	}
}

func concordDialer(cfg simopen.Config) func(context.Context, net.Conn) (simopen.Result, net.Conn, error) {
	return func(ctx context.Context, c net.Conn) (simopen.Result, net.Conn, error) {
		return simopen.Dial(ctx, c, cfg)
	}
}

// TestElectionAgainstReference: both dialed (TCP simultaneous open),
// Concord against the reference, with either side winning, the same or
// different first proposals (Concord pipelines only with the same), and
// either side starting first.
func TestElectionAgainstReference(t *testing.T) {
	noiseTLS := []string{"/noise", "/tls/1.0.0"}
	tlsNoise := []string{"/tls/1.0.0", "/noise"}
	for _, ref := range references {
		for _, concordWins := range []bool{true, false} {
			for _, same := range []bool{true, false} {
				for _, refFirst := range []bool{false, true} {
					name := fmt.Sprintf("%s/concord-wins=%v/same-first=%v/reference-starts=%v", ref.name, concordWins, same, refFirst)
					t.Run(name, func(t *testing.T) {
						n := uint64(0) // the reference draws from crypto/rand: it wins unless it also draws 0
						if concordWins {
							n = ^uint64(0)
						}
						theirs := noiseTLS
						if !same {
							theirs = tlsNoise
						}
						o := concordFirst
						if refFirst {
							o = referenceFirst
						}
						c, r := runOrdered(t, concordDialer(simopen.Config{Protocols: noiseTLS, Rand: nonce(n)}), refDialer(ref, theirs), o)
						want := "/noise"
						if !concordWins {
							want = theirs[0]
						}
						check(t, c, r, want)
						if wantRole := map[bool]network.Role{true: network.RoleInitiator, false: network.RoleResponder}[concordWins]; c.role != wantRole {
							t.Errorf("concord role %v, want %v", c.role, wantRole)
						}
					})
				}
			}
		}
	}
}

// TestSingleDialerAgainstReference: one dialer each way.
func TestSingleDialerAgainstReference(t *testing.T) {
	for _, ref := range references {
		t.Run(ref.name+"/concord-dials", func(t *testing.T) {
			c, r := run(t, concordDialer(simopen.Config{Protocols: []string{"/noise", "/tls/1.0.0"}}),
				func(conn net.Conn) (network.Role, string, error) {
					p, err := ref.listen([]string{"/tls/1.0.0", "/noise"}, conn)
					return network.RoleResponder, p, err
				})
			check(t, c, r, "/noise")
		})
		t.Run(ref.name+"/reference-dials", func(t *testing.T) {
			c, r := run(t,
				func(ctx context.Context, conn net.Conn) (simopen.Result, net.Conn, error) {
					return simopen.Accept(ctx, conn, simopen.Config{Protocols: []string{"/tls/1.0.0"}})
				},
				refDialer(ref, []string{"/noise", "/tls/1.0.0"}))
			check(t, c, r, "/tls/1.0.0")
		})
	}
}

// TestReferenceRoundTrips measures the reference code over the same delay
// line as simopen's TestRoundTrips: the time until the initiator holds
// the responder's first handshake reply, in one-way delays d. Concord's
// figures (4d single, 6d election, 4d pipelined) are asserted there.
func TestReferenceRoundTrips(t *testing.T) {
	const d = 10 * time.Millisecond
	protos := []string{"/noise"}
	measure := func(ref reference, election bool) time.Duration {
		var got time.Duration
		synctest.Test(t, func(t *testing.T) {
			ca, cb := simopentest.Pipe(d)
			defer ca.Close()
			defer cb.Close()
			start := time.Now()
			type out struct {
				role network.Role
				at   time.Duration
				err  error
			}
			side := func(f func(net.Conn) (network.Role, string, error), c net.Conn, ch chan<- out) {
				role, _, err := f(c)
				if err == nil {
					err = stub(role, c)
				}
				ch <- out{role, time.Since(start), err}
			}
			listener := func(c net.Conn) (network.Role, string, error) {
				p, err := ref.listen(protos, c)
				return network.RoleResponder, p, err
			}
			cha, chb := make(chan out, 1), make(chan out, 1)
			go side(refDialer(ref, protos), ca, cha)
			if election {
				go side(refDialer(ref, protos), cb, chb)
			} else {
				go side(listener, cb, chb)
			}
			a, b := <-cha, <-chb
			if a.err != nil || b.err != nil || a.role == b.role {
				t.Fatalf("a %v %v, b %v %v", a.role, a.err, b.role, b.err)
			}
			got = a.at
			if b.role == network.RoleInitiator {
				got = b.at
			}
		})
		return got
	}
	for _, ref := range references {
		single, election := measure(ref, false), measure(ref, true)
		t.Logf("%s: single dial %v, election %v (d = %v)", ref.name, single, election, d)
		if single != 4*d || election != 7*d {
			t.Errorf("%s: single %v, election %v; want 4d = %v and 7d = %v", ref.name, single, election, 4*d, 7*d)
		}
	}
}
