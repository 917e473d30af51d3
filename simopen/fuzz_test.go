package simopen

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
)

// scriptConn serves fixed bytes in chunks of a given size, then io.EOF,
// and records writes. It never blocks, so Dial over it always ends.
type scriptConn struct {
	in     []byte
	chunk  int
	writes [][]byte
}

func (c *scriptConn) Read(b []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	n := min(len(b), c.chunk, len(c.in))
	copy(b, c.in[:n])
	c.in = c.in[n:]
	return n, nil
}

func (c *scriptConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzDial feeds the dialed side arbitrary peer bytes in arbitrary chunks
// and checks that it never panics, always ends in a result or a typed
// error, writes a bounded amount, and that a result is consistent: one
// of our protocols, a role, an election record that agrees with the role.
func FuzzDial(f *testing.F) {
	for _, v := range vectorTable() {
		var in []byte
		for _, e := range v.Transcript {
			if e.From == "b" && !e.Close {
				b, _ := decodeHex(e.Hex)
				in = append(in, b...)
			}
		}
		f.Add(in, uint8(7), uint64(nonceA), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8, nonceN uint64, peers bool) {
		protos := []string{"/noise", "/tls/1.0.0"}
		cfg := Config{Protocols: protos, Rand: nonce(nonceN)}
		if peers {
			cfg.LocalPeer, cfg.RemotePeer = peerA, peerB
		}
		conn := &scriptConn{in: in, chunk: int(chunk)%64 + 1}
		res, c, err := Dial(context.Background(), conn, cfg)
		if err == nil && res.Pipelined {
			// The handshake's first write, then the confirming read.
			_, _ = c.Write([]byte("msg1"))
			_, err = c.Read(make([]byte, 16))
			if errors.Is(err, io.EOF) {
				err = nil // confirmed, then the script ended
			}
		}
		written := 0
		for _, w := range conn.writes {
			written += len(w)
		}
		// One write per token received plus the opening one, each at most
		// two tokens of our own.
		if bound := 2*(len(in)+1)*(DefaultMaxTokenLen+maxVarintLen) + 64; written > bound {
			t.Fatalf("wrote %d bytes for %d input bytes", written, len(in))
		}
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) && !errors.Is(err, ErrMalformedToken) && !errors.Is(err, ErrSimopenTie) &&
				!errors.Is(err, ErrNoCommonProtocol) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrPeerWithoutSimopen) {
				t.Fatalf("untyped error %v", err)
			}
			if errors.Is(err, ErrSimopenTie) && peers {
				t.Fatalf("tie error although both peer IDs are known: %v", err)
			}
			return
		}
		if !slices.Contains(protos, res.Protocol) {
			t.Fatalf("protocol %q not ours", res.Protocol)
		}
		if res.Role != network.RoleInitiator && res.Role != network.RoleResponder {
			t.Fatalf("role %v", res.Role)
		}
		if e := res.Election; e != nil {
			wantInit := e.Local > e.Remote || (e.Local == e.Remote && peerA > peerB)
			if (res.Role == network.RoleInitiator) != wantInit || e.Local != nonceN || e.TieBreak != (e.Local == e.Remote) {
				t.Fatalf("election %+v inconsistent with role %v (nonce %d)", e, res.Role, nonceN)
			}
		} else if res.Role != network.RoleInitiator {
			t.Fatalf("responder without an election")
		}
	})
}

// FuzzTamper runs two dialers' machines against each other without I/O
// and replaces one write (chosen by index) with fuzz bytes, as a broken or
// hostile path might. Invariant: whenever both sides complete, they hold
// different roles and the same protocol — tampering may fail the stage,
// never split it.
func FuzzTamper(f *testing.F) {
	f.Add(uint64(9), uint64(3), uint8(2), encodeTokens(formatSelect(1)), false)
	f.Add(uint64(3), uint64(9), uint8(3), encodeTokens(TokenInitiator, "/noise"), true)
	f.Add(uint64(5), uint64(5), uint8(4), encodeTokens(TokenResponder), true)
	f.Fuzz(func(t *testing.T, na, nb uint64, victim uint8, repl []byte, sameFirst bool) {
		protosB := []string{"/tls/1.0.0", "/noise"}
		if sameFirst {
			protosB = []string{"/noise", "/tls/1.0.0"}
		}
		type end struct {
			m   *machine
			dec *decoder
			err error
		}
		a := &end{m: newMachine([]string{"/noise", "/tls/1.0.0"}, peerA, peerB, na), dec: newDecoder(DefaultMaxTokenLen)}
		b := &end{m: newMachine(protosB, peerB, peerA, nb), dec: newDecoder(DefaultMaxTokenLen)}
		writes := 0
		// collect takes a side's pending writes (and held bytes, which
		// its handshake would send at once), tampering with the victim.
		collect := func(s *end) []byte {
			var out []byte
			for _, w := range append(s.m.output(), s.m.takeHeld()) {
				if w == nil {
					continue
				}
				if writes == int(victim%16) {
					w = repl
				}
				writes++
				out = append(out, w...)
			}
			return out
		}
		feed := func(s *end, in []byte) {
			s.dec.push(in)
			for s.err == nil && s.m.state != stateDone {
				tok, ok, err := s.dec.next()
				if err != nil {
					s.err = err
					return
				}
				if !ok {
					return
				}
				s.err = s.m.receive(tok)
			}
		}
		for round := 0; round < 64; round++ {
			toB, toA := collect(a), collect(b)
			if len(toA) == 0 && len(toB) == 0 {
				break
			}
			if a.err == nil {
				feed(a, toA)
			}
			if b.err == nil {
				feed(b, toB)
			}
		}
		if int(victim%16) >= writes && (a.m.state != stateDone || b.m.state != stateDone) {
			t.Fatalf("untampered exchange of %d writes did not complete: a %v %v, b %v %v", writes, a.m.state, a.err, b.m.state, b.err)
		}
		if a.m.state == stateDone && b.m.state == stateDone {
			ra, rb := a.m.res, b.m.res
			if ra.Role == rb.Role || ra.Protocol != rb.Protocol {
				t.Fatalf("split: a %+v, b %+v", ra, rb)
			}
		}
	})
}
