package tls

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/internal/sectest"
)

// FuzzHandshake replaces one chosen TLS record, in one chosen direction,
// with fuzz data between a real client and a real server (inside a synctest
// bubble, so that a handshake that waits for bytes that never come ends at
// the fake deadline at once). Invariants: every error is a
// *security.HandshakeError; a side that completes has authenticated the
// real peer and agrees on the muxer; when the data differs from the record
// it replaced, the server does not complete with its peer unauthenticated.
func FuzzHandshake(f *testing.F) {
	f.Add(false, uint8(0), []byte{0x16, 0x03, 0x01, 0x00, 0x00})
	f.Add(true, uint8(0), []byte{0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x00})
	f.Add(false, uint8(1), []byte{0x14, 0x03, 0x03, 0x00, 0x01, 0x01})
	f.Add(false, uint8(2), make([]byte, 40))
	ki, kr := sectest.Key(f, peer.Ed25519, 0), sectest.Key(f, peer.Ed25519, 1)
	f.Fuzz(func(t *testing.T, fromServer bool, which uint8, data []byte) {
		which %= 8
		synctest.Test(t, func(t *testing.T) {
			ti, tr := newTransport(t, ki, Config{}), newTransport(t, kr, Config{})
			c1, r1 := net.Pipe()
			r2, c2 := net.Pipe()
			var wg sync.WaitGroup
			wg.Add(2)
			go relayRecords(&wg, r2, r1, !fromServer, int(which), data)
			go relayRecords(&wg, r1, r2, fromServer, int(which), data)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			p := security.Params{Muxers: []string{"/yamux/1.0.0"}}
			ri, rr := sectest.Pair(ctx, ti, tr, c1, c2, p, p)
			for _, r := range []sectest.Result{ri, rr} {
				var he *security.HandshakeError
				if r.Err != nil && !errors.As(r.Err, &he) {
					t.Errorf("error %v (%T) is not a *security.HandshakeError", r.Err, r.Err)
				}
			}
			if ri.Err == nil && (ri.Conn.RemotePeer() != sectest.IDOf(t, kr) || ri.Conn.Muxer() != "/yamux/1.0.0") {
				t.Errorf("client completed with peer %s muxer %q", ri.Conn.RemotePeer(), ri.Conn.Muxer())
			}
			if rr.Err == nil && (rr.Conn.RemotePeer() != sectest.IDOf(t, ki) || rr.Conn.Muxer() != "/yamux/1.0.0") {
				t.Errorf("server completed with peer %s muxer %q", rr.Conn.RemotePeer(), rr.Conn.Muxer())
			}
			sectest.CloseAll(ri, rr)
			c1.Close()
			c2.Close()
			r1.Close()
			r2.Close()
			wg.Wait()
		})
	})
}

// relayRecords copies TLS records from src to dst, replacing record number
// which by data when replace is set.
func relayRecords(wg *sync.WaitGroup, dst, src net.Conn, replace bool, which int, data []byte) {
	defer wg.Done()
	defer dst.Close()
	for i := 0; ; i++ {
		var hdr [5]byte
		if _, err := io.ReadFull(src, hdr[:]); err != nil {
			return
		}
		rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
		copy(rec, hdr[:])
		if _, err := io.ReadFull(src, rec[5:]); err != nil {
			return
		}
		if replace && i == which && !bytes.Equal(rec, data) {
			rec = data
		}
		if _, err := dst.Write(rec); err != nil {
			return
		}
	}
}
