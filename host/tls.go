package host

import (
	"github.com/concordp2p/concord/peer"
	"github.com/concordp2p/concord/security"
	"github.com/concordp2p/concord/security/tls"
)

// newTLS builds the libp2p TLS 1.3 transport with its defaults (a fresh
// certificate key per connection).
func newTLS(k peer.PrivKey) (security.Transport, error) { return tls.New(k, tls.Config{}) }
