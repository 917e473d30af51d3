//go:build !unix

package tcp

import (
	"errors"
	"net"
)

func setBacklog(*net.TCPListener, int) error {
	return errors.New("ListenBacklog is supported on Unix systems only")
}
