package tcp

import (
	"fmt"
	"net"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// ToTCPAddr converts /ip4/<addr>/tcp/<port> or /ip6/<addr>/tcp/<port>
// (optionally preceded by /ip6zone/<zone>) to a *net.TCPAddr, and reports
// whether the address is IPv6. Anything else — DNS names, other protocols,
// trailing components such as /p2p/<id>, IPv4-mapped IPv6 addresses — fails
// with an error wrapping ErrUnsupportedAddr.
func ToTCPAddr(m ma.Multiaddr) (addr *net.TCPAddr, ipv6 bool, err error) {
	bad := func(why string) (*net.TCPAddr, bool, error) {
		return nil, false, fmt.Errorf("%w %q: %s (want /ip4|ip6/<address>/tcp/<port>)", ErrUnsupportedAddr, m.String(), why)
	}
	comps := []ma.Component(m)
	if len(comps) > 0 && comps[0].Code() == ma.P_IP6ZONE {
		comps = comps[1:]
		if len(comps) == 0 || comps[0].Code() != ma.P_IP6 {
			return bad("ip6zone not followed by ip6")
		}
	}
	if len(comps) != 2 {
		return bad(fmt.Sprintf("%d components after any zone", len(comps)))
	}
	switch comps[0].Code() {
	case ma.P_IP4:
	case ma.P_IP6:
		ipv6 = true
	default:
		return bad("first component is not ip4 or ip6")
	}
	if comps[1].Code() != ma.P_TCP {
		return bad("second component is not tcp")
	}
	na, err := manet.ToNetAddr(m)
	if err != nil {
		return bad(err.Error())
	}
	ta, ok := na.(*net.TCPAddr)
	if !ok {
		return bad(fmt.Sprintf("converts to %T", na))
	}
	if ipv6 && ta.IP.To4() != nil {
		// Dialing "tcp6" to ::ffff:a.b.c.d would leave the IPv6 family,
		// and the address converts back to /ip4/…: refuse it.
		return bad("IPv4-mapped IPv6 address")
	}
	return ta, ipv6, nil
}

// FromTCPAddr converts a *net.TCPAddr to /ip4|ip6/<addr>/tcp/<port>
// (with /ip6zone/<zone> first when the address has a zone). An IPv4-mapped
// IPv6 address converts to /ip4.
func FromTCPAddr(a *net.TCPAddr) (ma.Multiaddr, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil address", ErrUnsupportedAddr)
	}
	m, err := manet.FromNetAddr(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %v: %v", ErrUnsupportedAddr, a, err)
	}
	return m, nil
}

// ExpandUnspecified returns addrs with each /ip4/0.0.0.0/tcp/PORT or
// /ip6/::/tcp/PORT replaced by the same port on every address of that
// family that the machine's interfaces have, loopback included and
// link-local ones aside: what a peer can dial, for announcing a listener
// bound to all interfaces. An unspecified address stays when no interface
// has that family; other addresses pass unchanged, in order.
func ExpandUnspecified(addrs []ma.Multiaddr) []ma.Multiaddr {
	var ifaddrs []net.IP
	if as, err := net.InterfaceAddrs(); err == nil {
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok {
				ifaddrs = append(ifaddrs, n.IP)
			}
		}
	}
	return expandUnspecified(addrs, ifaddrs)
}

// expandUnspecified is ExpandUnspecified with the interface addresses given.
func expandUnspecified(addrs []ma.Multiaddr, ifaddrs []net.IP) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range addrs {
		ta, ipv6, err := ToTCPAddr(a)
		if err != nil || !ta.IP.IsUnspecified() {
			out = append(out, a)
			continue
		}
		n := len(out)
		for _, ip := range ifaddrs {
			if ip.IsLinkLocalUnicast() || (ip.To4() == nil) != ipv6 {
				continue
			}
			if m, err := FromTCPAddr(&net.TCPAddr{IP: ip, Port: ta.Port}); err == nil {
				out = append(out, m)
			}
		}
		if len(out) == n {
			out = append(out, a) // no interface of that family: keep what there is
		}
	}
	return out
}
