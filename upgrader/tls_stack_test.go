package upgrader

import (
	"testing"

	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/tls"
)

// tlsStacks returns the TLS security stacks: muxer inlined in ALPN, and
// negotiated with multistream-select afterwards.
func tlsStacks() []securityStack {
	build := func(inlined bool) func(t testing.TB, k peer.PrivKey) []security.Transport {
		return func(t testing.TB, k peer.PrivKey) []security.Transport {
			tr, err := tls.New(k, tls.Config{})
			if err != nil {
				t.Fatal(err)
			}
			if inlined {
				return []security.Transport{tr}
			}
			return []security.Transport{stripMuxers{tr}}
		}
	}
	return []securityStack{
		{name: "tls/inlined-muxer", build: build(true)},
		{name: "tls/multistream-muxer", build: build(false)},
	}
}
