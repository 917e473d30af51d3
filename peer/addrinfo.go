package peer

import (
	"fmt"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// AddrInfo is a peer ID with the transport addresses it can be reached at
// (without the trailing /p2p/<id> component).
type AddrInfo struct {
	ID    ID
	Addrs []ma.Multiaddr
}

// AddrInfoFromString parses a multiaddr that ends in /p2p/<id>, such as
// "/ip4/192.0.2.1/tcp/4001/p2p/12D3KooW…" or "/p2p/12D3KooW…" alone.
func AddrInfoFromString(s string) (*AddrInfo, error) {
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("parsing peer address %q: %w", s, err)
	}
	return AddrInfoFromP2pAddr(m)
}

// AddrInfoFromP2pAddr splits a multiaddr ending in /p2p/<id> into the peer
// ID (validated, see IDFromBytes) and the transport address before it. A
// bare /p2p/<id> gives an AddrInfo without addresses. Errors wrap
// ErrInvalidID.
func AddrInfoFromP2pAddr(m ma.Multiaddr) (*AddrInfo, error) {
	transport, last := ma.SplitLast(m)
	if last == nil || last.Code() != ma.P_P2P {
		return nil, fmt.Errorf("%w: multiaddr %q does not end in /p2p/<peer ID>", ErrInvalidID, m.String())
	}
	id, err := IDFromBytes(last.RawValue())
	if err != nil {
		return nil, fmt.Errorf("multiaddr %q: %w", m.String(), err)
	}
	info := &AddrInfo{ID: id}
	if len(transport) > 0 {
		info.Addrs = []ma.Multiaddr{transport}
	}
	return info, nil
}

// P2pAddrs returns each address with /p2p/<id> appended, or the bare
// /p2p/<id> when there are no addresses.
func (ai AddrInfo) P2pAddrs() ([]ma.Multiaddr, error) {
	c, err := ma.NewComponent("p2p", ai.ID.String())
	if err != nil {
		return nil, fmt.Errorf("%w: building /p2p component: %w", ErrInvalidID, err)
	}
	if len(ai.Addrs) == 0 {
		return []ma.Multiaddr{c.Multiaddr()}, nil
	}
	out := make([]ma.Multiaddr, 0, len(ai.Addrs))
	for _, a := range ai.Addrs {
		out = append(out, a.Encapsulate(c))
	}
	return out, nil
}

// String returns "{<id>: [<addr> …]}".
func (ai AddrInfo) String() string {
	addrs := make([]string, len(ai.Addrs))
	for i, a := range ai.Addrs {
		addrs[i] = a.String()
	}
	return fmt.Sprintf("{%s: [%s]}", ai.ID, strings.Join(addrs, " "))
}
