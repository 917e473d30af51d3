package noise

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// FuzzHandshake replaces one chosen handshake message with fuzz data on the
// way between a real initiator and a real responder. Invariants: both
// sides return (no hang), every error is a *security.HandshakeError, and
// unless the data equals the original message the responder never
// completes, while the initiator completes only when the replaced message
// is its own last one.
func FuzzHandshake(f *testing.F) {
	f.Add(uint8(0), make([]byte, 32))
	f.Add(uint8(1), make([]byte, 96))
	f.Add(uint8(2), make([]byte, 64))
	f.Add(uint8(1), []byte{})
	ki, kr := sectest.Key(f, peer.Ed25519, 0), sectest.Key(f, peer.Ed25519, 1)
	ti, tr := newTransport(f, ki, Config{}), newTransport(f, kr, Config{})
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		which %= 3
		if len(data) > maxMessage {
			data = data[:maxMessage]
		}
		i1, r1 := net.Pipe() // initiator <-> relay
		r2, i2 := net.Pipe() // relay <-> responder
		replacedSame := make(chan bool, 1)
		go relayReplacing(r1, r2, int(which), data, replacedSame)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p := security.Params{Muxers: []string{"/yamux/1.0.0"}}
		ri, rr := sectest.Pair(ctx, ti, tr, i1, i2, p, p)
		defer sectest.CloseAll(ri, rr)
		r1.Close()
		r2.Close()
		same := <-replacedSame
		for _, err := range []error{ri.Err, rr.Err} {
			var he *security.HandshakeError
			if err != nil && !errors.As(err, &he) {
				t.Fatalf("error %v (%T) is not a *security.HandshakeError", err, err)
			}
			if errors.Is(err, security.ErrHandshakeTimeout) {
				t.Fatalf("handshake hung until the deadline: %v", err)
			}
		}
		if same {
			return
		}
		if rr.Err == nil {
			t.Fatalf("responder completed although message %d was replaced", which+1)
		}
		if ri.Err == nil && which != 2 {
			t.Fatalf("initiator completed although message %d was replaced", which+1)
		}
	})
}

// relayReplacing forwards the three XX messages (initiator, responder,
// initiator), replacing message number which (0-based) by data. It reports
// whether data was equal to the message it replaced (or the relay never got
// that far, in which case nothing was replaced).
func relayReplacing(init, resp net.Conn, which int, data []byte, same chan<- bool) {
	defer init.Close()
	defer resp.Close()
	replaced := true
	defer func() { same <- replaced }()
	for i := range 3 {
		src, dst := init, resp
		if i == 1 {
			src, dst = resp, init
		}
		msg, err := readRawFrame(src)
		if err != nil {
			return
		}
		if i == which {
			replaced = bytes.Equal(msg, data)
			msg = data
		}
		if writeRawFrame(dst, msg) != nil {
			return
		}
	}
}

func readRawFrame(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(r, msg)
	return msg, err
}
