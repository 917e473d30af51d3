//go:build linux

package netlab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a fresh goroutine whose OS thread has joined the host's
// network namespace, and waits for it. Sockets created by fn (directly or by
// the net package on fn's goroutine) belong to the namespace and keep
// belonging to it wherever they are used afterwards.
//
// Only fn's own goroutine is in the namespace: goroutines fn starts run on
// ordinary threads in the root namespace. Code that creates sockets on
// other goroutines (a happy-eyeballs dialer racing two families, a DNS
// lookup) does not work under Do.
//
// The thread is never unlocked: when fn returns the goroutine ends with its
// thread still locked, and the Go runtime then destroys the thread instead
// of returning a thread in a foreign namespace to the scheduler's pool. This
// costs one thread creation per call and cannot leak the namespace into
// unrelated goroutines, which restoring the namespace by hand could if the
// restore failed.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // deliberately never unlocked; see above
		if err := enterNamespace(h.Name); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// enterNamespace moves the calling thread into the named namespace.
func enterNamespace(name string) error {
	f, err := os.Open(filepath.Join(netnsDir, name))
	if err != nil {
		return fmt.Errorf("opening namespace %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("entering namespace %s: setns: %w", name, err)
	}
	return nil
}
