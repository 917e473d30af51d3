package simopen

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/simopen/simopentest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// nonce returns a Rand that yields n as the election number.
func nonce(n uint64) io.Reader {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], n)
	return bytes.NewReader(b[:])
}

type outcome struct {
	res  Result
	conn net.Conn
	err  error // of the stage
	herr error // of the stub handshake run after it
}

type side func(context.Context, net.Conn) (Result, net.Conn, error)

// runPair runs fa and fb concurrently on the two ends of a pipe, each
// followed by a stub handshake in its role (see handshake).
func runPair(t *testing.T, delay time.Duration, fa, fb side) (a, b outcome) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return runPairDelay(t, ctx, delay, fa, fb, nil)
}

// runPairCtx is runPair with a caller's ctx and a pause between the stage
// and the handshake.
func runPairCtx(t *testing.T, ctx context.Context, fa, fb side, pause func()) (a, b outcome) {
	t.Helper()
	return runPairDelay(t, ctx, 0, fa, fb, pause)
}

func runPairDelay(t *testing.T, ctx context.Context, delay time.Duration, fa, fb side, pause func()) (a, b outcome) {
	t.Helper()
	ca, cb := simopentest.Pipe(delay)
	defer ca.Close()
	defer cb.Close()
	return runConnsPause(ctx, ca, cb, fa, fb, pause)
}

// runConns runs fa on ca and fb on cb concurrently, each followed by the
// stub handshake.
func runConns(ctx context.Context, ca, cb net.Conn, fa, fb side) (a, b outcome) {
	return runConnsPause(ctx, ca, cb, fa, fb, nil)
}

func runConnsPause(ctx context.Context, ca, cb net.Conn, fa, fb side, pause func()) (a, b outcome) {
	run := func(f side, c net.Conn) outcome {
		r, conn, err := f(ctx, c)
		if err != nil {
			c.Close() // as the upgrader would: the peer's stage ends too
			return outcome{res: r, err: err}
		}
		if pause != nil {
			pause()
		}
		return outcome{res: r, conn: conn, herr: handshake(r.Role, conn)}
	}
	done := make(chan outcome, 1)
	go func() { done <- run(fb, cb) }()
	a = run(fa, ca)
	return a, <-done
}

// handshake is a stub security handshake: the initiator writes msg1, the
// responder reads it and writes msg2, the initiator reads msg2. It proves
// the returned conns carry the handshake intact.
func handshake(role network.Role, c net.Conn) error {
	buf := make([]byte, 4)
	switch role {
	case network.RoleInitiator:
		if _, err := c.Write([]byte("msg1")); err != nil {
			return fmt.Errorf("initiator writing msg1: %w", err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("initiator reading msg2: %w", err)
		}
		if string(buf) != "msg2" {
			return fmt.Errorf("initiator read %q, want msg2", buf)
		}
	case network.RoleResponder:
		if _, err := io.ReadFull(c, buf); err != nil {
			return fmt.Errorf("responder reading msg1: %w", err)
		}
		if string(buf) != "msg1" {
			return fmt.Errorf("responder read %q, want msg1", buf)
		}
		if _, err := c.Write([]byte("msg2")); err != nil {
			return fmt.Errorf("responder writing msg2: %w", err)
		}
	default:
		return fmt.Errorf("role %v", role)
	}
	return nil
}

func dialer(cfg Config) side {
	return func(ctx context.Context, c net.Conn) (Result, net.Conn, error) { return Dial(ctx, c, cfg) }
}

func acceptor(cfg Config) side {
	return func(ctx context.Context, c net.Conn) (Result, net.Conn, error) { return Accept(ctx, c, cfg) }
}

var (
	peerA = peer.ID("\x00\x24\x08\x01\x12\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	peerB = peer.ID("\x00\x24\x08\x01\x12\x20bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
)

func TestPairs(t *testing.T) {
	noiseTLS := []string{"/noise", "/tls/1.0.0"}
	tlsNoise := []string{"/tls/1.0.0", "/noise"}
	for _, tc := range []struct {
		name          string
		a, b          side
		wantA         network.Role
		wantProto     string
		wantElection  bool
		wantPipelined bool // for whichever side initiates
		wantTieBreak  bool
	}{
		{"dial-accept", dialer(Config{Protocols: noiseTLS}), acceptor(Config{Protocols: tlsNoise}),
			network.RoleInitiator, "/noise", false, false, false},
		{"dial-accept-second-choice", dialer(Config{Protocols: []string{"/x", "/tls/1.0.0"}}), acceptor(Config{Protocols: noiseTLS}),
			network.RoleInitiator, "/tls/1.0.0", false, false, false},
		{"accept-dial", acceptor(Config{Protocols: tlsNoise}), dialer(Config{Protocols: noiseTLS}),
			network.RoleResponder, "/noise", false, false, false},
		{"election-a-larger-pipelined", dialer(Config{Protocols: noiseTLS, Rand: nonce(9)}), dialer(Config{Protocols: noiseTLS, Rand: nonce(3)}),
			network.RoleInitiator, "/noise", true, true, false},
		{"election-b-larger-pipelined", dialer(Config{Protocols: noiseTLS, Rand: nonce(3)}), dialer(Config{Protocols: noiseTLS, Rand: nonce(9)}),
			network.RoleResponder, "/noise", true, true, false},
		{"election-a-larger-sync", dialer(Config{Protocols: noiseTLS, Rand: nonce(9)}), dialer(Config{Protocols: tlsNoise, Rand: nonce(3)}),
			network.RoleInitiator, "/noise", true, false, false},
		{"election-b-larger-sync", dialer(Config{Protocols: noiseTLS, Rand: nonce(3)}), dialer(Config{Protocols: tlsNoise, Rand: nonce(9)}),
			network.RoleResponder, "/tls/1.0.0", true, false, false},
		{"election-tie-peer-id", dialer(Config{Protocols: noiseTLS, Rand: nonce(5), LocalPeer: peerA, RemotePeer: peerB}),
			dialer(Config{Protocols: noiseTLS, Rand: nonce(5), LocalPeer: peerB, RemotePeer: peerA}),
			network.RoleResponder, "/noise", true, true, true},
		{"election-random", dialer(Config{Protocols: noiseTLS}), dialer(Config{Protocols: noiseTLS}),
			network.RoleUnknown, "/noise", true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := runPair(t, 0, tc.a, tc.b)
			if a.err != nil || b.err != nil || a.herr != nil || b.herr != nil {
				t.Fatalf("errors: a %v / %v, b %v / %v", a.err, a.herr, b.err, b.herr)
			}
			if a.res.Role == b.res.Role || a.res.Role == network.RoleUnknown || b.res.Role == network.RoleUnknown {
				t.Fatalf("roles a %v, b %v: want one initiator and one responder", a.res.Role, b.res.Role)
			}
			if tc.wantA != network.RoleUnknown && a.res.Role != tc.wantA {
				t.Errorf("a role %v, want %v", a.res.Role, tc.wantA)
			}
			if a.res.Protocol != tc.wantProto || b.res.Protocol != tc.wantProto {
				t.Errorf("protocols a %q, b %q, want %q", a.res.Protocol, b.res.Protocol, tc.wantProto)
			}
			if got := a.res.Election != nil; got != tc.wantElection {
				t.Errorf("a election record present %v, want %v", got, tc.wantElection)
			}
			if tc.wantElection {
				ea, eb := a.res.Election, b.res.Election
				if eb == nil || ea.Local != eb.Remote || ea.Remote != eb.Local || ea.TieBreak != tc.wantTieBreak || eb.TieBreak != tc.wantTieBreak {
					t.Errorf("election records a %+v, b %+v: want mirrored, tie-break %v", ea, eb, tc.wantTieBreak)
				}
			}
			ini := a
			if b.res.Role == network.RoleInitiator {
				ini = b
			}
			if ini.res.Pipelined != tc.wantPipelined {
				t.Errorf("initiator Pipelined %v, want %v", ini.res.Pipelined, tc.wantPipelined)
			}
		})
	}
}

func TestTieWithoutPeerIDs(t *testing.T) {
	cfg := func() Config { return Config{Protocols: []string{"/noise"}, Rand: nonce(7), LocalPeer: peerA} }
	a, b := runPair(t, 0, dialer(cfg()), dialer(cfg()))
	for name, o := range map[string]outcome{"a": a, "b": b} {
		if !errors.Is(o.err, ErrSimopenTie) {
			t.Errorf("%s: err %v, want ErrSimopenTie", name, o.err)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for _, protos := range [][]string{
		nil, {""}, {"/noise", "/noise"}, {"na"}, {ProtocolID}, {ProtocolHeader}, {"initiator"}, {"responder"},
		{"select:1"}, {"a\nb"}, {"\xff"}, {string(bytes.Repeat([]byte{'x'}, DefaultMaxTokenLen))},
	} {
		_, _, err := Dial(context.Background(), nil, Config{Protocols: protos})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Dial with protocols %q: err %v, want ErrInvalidConfig", protos, err)
		}
		_, _, err = Accept(context.Background(), nil, Config{Protocols: protos})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("Accept with protocols %q: err %v, want ErrInvalidConfig", protos, err)
		}
	}
	for _, n := range []int{-1, 1, minTokenLimit - 1, DefaultMaxTokenLen + 1} {
		_, _, err := Dial(context.Background(), nil, Config{Protocols: []string{"/noise"}, MaxTokenLen: n})
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("MaxTokenLen %d: err %v, want ErrInvalidConfig", n, err)
		}
	}
	if err := (&Config{Protocols: []string{"/noise"}, MaxTokenLen: minTokenLimit}).validate(); err != nil {
		t.Errorf("MaxTokenLen %d: %v, want accepted", minTokenLimit, err)
	}
	long := string(bytes.Repeat([]byte{'x'}, DefaultMaxTokenLen-1))
	if err := (&Config{Protocols: []string{long}}).validate(); err != nil {
		t.Errorf("a protocol ID of %d bytes: %v, want accepted", len(long), err)
	}
}
