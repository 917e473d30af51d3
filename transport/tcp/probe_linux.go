package tcp

import (
	"fmt"
	"net"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// probeListeners reports, as an error wrapping ErrPortInUse, whether a
// socket already listens on la's port at an address that overlaps la (the
// same address, or a wildcard on either side).
//
// It binds, and closes at once, a socket with SO_REUSEADDR but without
// SO_REUSEPORT; the probe never listens. Linux refuses that bind
// (EADDRINUSE) when a LISTEN socket holds the port, whatever its flags, and
// accepts it next to sockets that have SO_REUSEADDR and are not listening:
// connections dialed from the port or accepted on it (accepted sockets
// inherit the listener's flags), established or in TIME-WAIT. The
// listeners of this package and of the net package all set SO_REUSEADDR,
// so the only other refusal is a socket bound to the port without it,
// which the real listen could not share either.
//
// An IPv6 probe is IPv6-only, as the listener will be, so that it does not
// collide with an IPv4 listener on the same port.
func probeListeners(la *net.TCPAddr, ipv6 bool) error {
	fam, sa, err := probeSockaddr(la, ipv6)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}
	if ipv6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	switch err := unix.Bind(fd, sa); err {
	case nil:
		return nil
	case unix.EADDRINUSE:
		return fmt.Errorf("%w: another socket listens on port %d: %w", ErrPortInUse, la.Port, os.NewSyscallError("bind", err))
	default:
		// The listen that follows fails the same way and reports it.
		return nil
	}
}

func probeSockaddr(la *net.TCPAddr, ipv6 bool) (int, unix.Sockaddr, error) {
	if !ipv6 {
		sa := &unix.SockaddrInet4{Port: la.Port}
		if ip := la.IP.To4(); ip != nil {
			copy(sa.Addr[:], ip)
		}
		return unix.AF_INET, sa, nil
	}
	sa := &unix.SockaddrInet6{Port: la.Port}
	copy(sa.Addr[:], la.IP.To16())
	if la.Zone != "" {
		if ifi, err := net.InterfaceByName(la.Zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, perr := strconv.ParseUint(la.Zone, 10, 32); perr == nil {
			sa.ZoneId = uint32(n)
		} else {
			return 0, nil, fmt.Errorf("zone %q: %w", la.Zone, err)
		}
	}
	return unix.AF_INET6, sa, nil
}
