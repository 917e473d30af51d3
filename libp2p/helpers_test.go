package concordlibp2p

import (
	"crypto/rand"
	"testing"

	"go.uber.org/goleak"

	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	lpeer "github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/core/transport"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2ptcp "github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-libp2p's packages start these at init and never stop them.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func newKey(t testing.TB) (lcrypto.PrivKey, lpeer.ID) {
	t.Helper()
	k, _, err := lcrypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := lpeer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// concordTransport returns a Concord transport with a new identity.
func concordTransport(t testing.TB, opts ...Option) (*Transport, lpeer.ID) {
	t.Helper()
	k, id := newKey(t)
	tr, err := NewTransport(k, nil, nil, opts...)
	if err != nil {
		t.Fatalf("NewTransport: %v", err)
	}
	return tr, id
}

// stockTransport returns go-libp2p's own TCP transport with its upgrader,
// security sec ("/noise" or "/tls/1.0.0") and yamux.
func stockTransport(t testing.TB, secID string) (transport.Transport, lpeer.ID) {
	t.Helper()
	k, id := newKey(t)
	muxers := []tptu.StreamMuxer{{ID: yamux.ID, Muxer: yamux.DefaultTransport}}
	var st sec.SecureTransport
	var err error
	switch secID {
	case noise.ID:
		st, err = noise.New(noise.ID, k, muxers)
	case libp2ptls.ID:
		st, err = libp2ptls.New(libp2ptls.ID, k, muxers)
	default:
		t.Fatalf("unknown security %q", secID)
	}
	if err != nil {
		t.Fatal(err)
	}
	u, err := tptu.New([]sec.SecureTransport{st}, muxers, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := libp2ptcp.NewTCPTransport(u, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tr, id
}
