package yamux

import (
	"errors"
	"testing"

	"github.com/concordp2p/concord/muxer"
)

// TestErrorCodes checks that a reset's and a go-away's codes reach the
// peer as the Code of its *muxer.Error, with Remote set.
func TestErrorCodes(t *testing.T) {
	c, s := newSessions(t, Config{}, Config{})
	a, b := openPair(t, c, s)
	if err := a.(muxer.CodedStream).ResetWithError(42); err != nil {
		t.Fatalf("ResetWithError: %v", err)
	}
	var me *muxer.Error
	if _, err := b.Read(make([]byte, 1)); !errors.As(err, &me) || me.Kind != muxer.ErrStreamReset || !me.Remote || me.Code != 42 {
		t.Fatalf("Read after the peer's ResetWithError(42): got %v, want a remote stream reset with code 42", err)
	}

	_, b = openPair(t, c, s)
	if err := c.CloseWithError(7); err != nil {
		t.Fatalf("CloseWithError: %v", err)
	}
	<-s.Done()
	if err := s.Err(); !errors.As(err, &me) || !errors.Is(err, muxer.ErrGoAway) || !me.Remote || me.Code != 7 {
		t.Fatalf("session Err after the peer's CloseWithError(7): got %v, want a remote go-away with code 7", err)
	}
	if _, err := b.Read(make([]byte, 1)); !errors.As(err, &me) || !errors.Is(err, muxer.ErrSessionClosed) || !me.Remote || me.Code != 7 {
		t.Fatalf("stream Read after the peer's CloseWithError(7): got %v, want the session's go-away with code 7", err)
	}
	if err := c.Err(); !errors.As(err, &me) || me.Remote || me.Code != 7 {
		t.Fatalf("local session Err after CloseWithError(7): got %v, want a local close with code 7", err)
	}
}
