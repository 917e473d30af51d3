package upgrader

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/concordp2p/concord/network"
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/simopen"
)

// cancellingConn cancels a context inside the Read that hands the stage
// its last byte, so the stage completes at the instant its context ends.
type cancellingConn struct {
	net.Conn
	mu     sync.Mutex
	want   int // bytes left before cancelling
	cancel context.CancelFunc
}

func (c *cancellingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.want -= n
	if c.want <= 0 && c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.mu.Unlock()
	return n, err
}

func (c *cancellingConn) LocalPeer() peer.ID           { return "" }
func (c *cancellingConn) RemotePeer() peer.ID          { return "" }
func (c *cancellingConn) RemotePublicKey() peer.PubKey { return nil }
func (c *cancellingConn) Protocol() string             { return "" }
func (c *cancellingConn) Muxer() string                { return "" }

var _ security.Conn = (*cancellingConn)(nil)

// TestStageCompletingAsContextEnds is issue 11's bug: the muxer stage
// succeeds while its context is cancelled; the connection it hands on must
// have no deadline left. Before internal/ctxconn the stage's binding did
// not wait for a callback that had started, and the next read failed with
// a timeout in a share of these iterations.
func TestStageCompletingAsContextEnds(t *testing.T) {
	ids := []string{"/yamux/1.0.0"}
	// The initiator's answer: the multistream header and the muxer echoed.
	const answer = len("\x13/multistream/1.0.0\n") + len("\x0d/yamux/1.0.0\n")
	for i := range 300 {
		a, b := pipe(0)
		ctx, cancel := context.WithCancel(context.Background())
		c := &cancellingConn{Conn: a, want: answer, cancel: cancel}
		peerDone := make(chan error, 1)
		go func() {
			_, err := negotiateMuxer(context.Background(), &cancellingConn{Conn: b}, network.RoleResponder, ids)
			if err == nil {
				_, err = b.Write([]byte{42})
			}
			peerDone <- err
		}()
		id, err := negotiateMuxer(ctx, c, network.RoleInitiator, ids)
		if err != nil {
			t.Fatalf("iteration %d: negotiateMuxer: %v", i, err)
		}
		if id != ids[0] {
			t.Fatalf("iteration %d: muxer %q, want %q", i, id, ids[0])
		}
		if err := <-peerDone; err != nil {
			t.Fatalf("iteration %d: peer: %v", i, err)
		}
		// Give a stray callback every chance to land, then read.
		for range 10 {
			runtime.Gosched()
		}
		var one [1]byte
		if _, err := a.Read(one[:]); err != nil {
			t.Fatalf("iteration %d: read after a stage that succeeded: %v", i, err)
		}
		cancel()
		_ = a.Close()
		_ = b.Close()
	}
}

// token encodes one multistream-select token.
func token(s string) []byte {
	return append([]byte{byte(len(s) + 1)}, s+"\n"...)
}

// TestPipelinedElectionFailureIsSimopenStage: when this side wins an
// election, its "initiator" leaves with the first handshake message and
// the peer's "responder" is checked inside the handshake. A peer that
// answers anything else has failed the election, and the error must say
// StageSimopen on this path too: the host's redial rule keys on it.
func TestPipelinedElectionFailureIsSimopenStage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer func(net.Conn)
		target error
	}{
		{"garbage instead of responder", func(c net.Conn) { _, _ = c.Write(token("whatever")) }, nil},
		// Our write or read of the pipelined tokens fails, whichever
		// comes first.
		{"closed instead of responder", func(c net.Conn) { _ = c.Close() }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := pipe(0)
			defer a.Close()
			defer b.Close()
			// Our election number is all ones: we win against the peer's 0.
			u := newUpgrader(t, Config{Rand: bytes.NewReader(bytes.Repeat([]byte{0xff}, 8))})
			sec := u.secIDs[0]
			go func() {
				var first [512]byte
				_, _ = b.Read(first[:]) // our header, simopen token and proposal
				var w []byte
				for _, s := range []string{"/multistream/1.0.0", "/libp2p/simultaneous-connect", sec, "select:0"} {
					w = append(w, token(s)...)
				}
				_, _ = b.Write(w)
				_, _ = b.Read(first[:]) // our select:, then initiator and the handshake
				tc.answer(b)
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := u.Upgrade(ctx, a, network.DirOutbound, "")
			mustStage(t, err, StageSimopen, tc.target)
			if pe := (*simopen.PipelineError)(nil); !errors.As(err, &pe) {
				t.Errorf("error %v carries no *simopen.PipelineError", err)
			}
		})
	}
}
