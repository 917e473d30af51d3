//go:build !linux

package tcp

import "net"

// probeListeners does nothing: the probe relies on Linux's bind rules (the
// package documentation's Limits). Elsewhere the system's SO_REUSEPORT
// rules decide whether a second listener may share a port.
func probeListeners(*net.TCPAddr, bool) error { return nil }
