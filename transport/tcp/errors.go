package tcp

import (
	"errors"
	"fmt"

	ma "github.com/multiformats/go-multiaddr"
)

var (
	// ErrUnsupportedAddr: the multiaddr is not /ip4/<addr>/tcp/<port> or
	// /ip6/<addr>/tcp/<port> (optionally with a leading /ip6zone/<zone>).
	ErrUnsupportedAddr = errors.New("tcp: unsupported multiaddr")

	// ErrDialTimeout: the connect did not complete within the transport's
	// connect timeout or before the caller's context deadline.
	ErrDialTimeout = errors.New("tcp: connect timed out")

	// ErrSelfConnect: a dial from a listener's port reached that same
	// address and port, and TCP connected the socket to itself. Dial does
	// not return it; it appears as ConnInfo.FallbackCause when Dial
	// retried from an ephemeral port because of it.
	ErrSelfConnect = errors.New("tcp: socket connected to itself")

	// ErrPortInUse: Listen found another socket (of any process, this one
	// included) listening on the port at an overlapping address, and
	// Config.SharePort was not set; or the kernel refused the bind with
	// EADDRINUSE. The error wraps syscall.EADDRINUSE too.
	ErrPortInUse = errors.New("tcp: port in use")
)

// DialError is the error Transport.Dial returns. It names the address that
// failed and wraps the cause: ErrUnsupportedAddr, ErrDialTimeout,
// context.Canceled (or the context's cause), or the kernel's error from
// connect(2) as a *net.OpError.
type DialError struct {
	// Addr is the multiaddr that was dialed.
	Addr ma.Multiaddr
	// Err is the cause.
	Err error
}

func (e *DialError) Error() string { return fmt.Sprintf("tcp: dialing %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

// Timeout reports whether the dial failed by timing out, so that a
// DialError satisfies net.Error's Timeout method.
func (e *DialError) Timeout() bool { return errors.Is(e.Err, ErrDialTimeout) }

// ListenError is the error Transport.Listen returns: the address that could
// not be listened on and the cause.
type ListenError struct {
	Addr ma.Multiaddr
	Err  error
}

func (e *ListenError) Error() string { return fmt.Sprintf("tcp: listening on %s: %v", e.Addr, e.Err) }
func (e *ListenError) Unwrap() error { return e.Err }
