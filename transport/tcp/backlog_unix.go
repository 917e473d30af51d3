//go:build unix

package tcp

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// setBacklog calls listen(2) again on an already listening socket with the
// requested backlog. net.ListenConfig has no backlog setting (Go always
// passes net.core.somaxconn), and calling listen on a listening socket is
// how POSIX systems change the backlog; Linux updates it in place.
func setBacklog(l *net.TCPListener, backlog int) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var lerr error
	if err := rc.Control(func(fd uintptr) { lerr = unix.Listen(int(fd), backlog) }); err != nil {
		return err
	}
	if lerr != nil {
		return fmt.Errorf("setting listen backlog %d: %w", backlog, lerr)
	}
	return nil
}
