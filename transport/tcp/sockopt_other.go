//go:build !linux

package tcp

import (
	"net"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux-only (the package
// documentation lists what this means elsewhere).
func setUserTimeout(*net.TCPConn, time.Duration) error { return nil }
