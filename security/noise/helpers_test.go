package noise

import (
	"testing"

	"github.com/concordp2p/concord/peer"
)

func newTransport(t testing.TB, priv peer.PrivKey, cfg Config) *Transport {
	t.Helper()
	tr, err := New(priv, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}
