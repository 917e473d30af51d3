//go:build !linux

package netlab

import "fmt"

// Do needs Linux network namespaces; Require skips (or fails) every test
// before it could get here on other systems.
func (h *Host) Do(fn func() error) error {
	return fmt.Errorf("%w: Do needs Linux", ErrUnavailable)
}
