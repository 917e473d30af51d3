//go:build !linux

package netlab

import (
	"context"
	"fmt"
	"time"
)

// DelayLine needs Linux (NFQUEUE); see the Linux documentation of the type.
type DelayLine struct{ delay time.Duration }

// DelayLine fails on systems other than Linux.
func (h *Host) DelayLine(ctx context.Context, d time.Duration) (*DelayLine, error) {
	return nil, fmt.Errorf("%w: DelayLine needs Linux", ErrUnavailable)
}

func (l *DelayLine) Stop() error          { return nil }
func (l *DelayLine) Delay() time.Duration { return l.delay }
func (l *DelayLine) Packets() uint64      { return 0 }
func (l *DelayLine) Failures() uint64     { return 0 }
