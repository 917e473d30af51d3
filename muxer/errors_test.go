package muxer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestErrorIs(t *testing.T) {
	cause := fmt.Errorf("reading frame header: %w", io.ErrUnexpectedEOF)
	tests := []struct {
		name        string
		err         *Error
		is          []error
		isNot       []error
		wantTimeout bool
	}{
		{
			name:  "session closed by keepalive",
			err:   &Error{Op: "read", Kind: ErrSessionClosed, Err: ErrKeepaliveTimeout},
			is:    []error{ErrSessionClosed, ErrKeepaliveTimeout},
			isNot: []error{ErrStreamReset, os.ErrDeadlineExceeded, net.ErrClosed},
		},
		{
			name:  "session closed by connection error",
			err:   &Error{Op: "write", Kind: ErrSessionClosed, Err: cause},
			is:    []error{ErrSessionClosed, io.ErrUnexpectedEOF},
			isNot: []error{ErrKeepaliveTimeout},
		},
		{
			name:  "remote reset",
			err:   &Error{Op: "read", Kind: ErrStreamReset, Remote: true, Code: 7},
			is:    []error{ErrStreamReset},
			isNot: []error{ErrSessionClosed},
		},
		{
			name:        "deadline",
			err:         &Error{Op: "write", Kind: os.ErrDeadlineExceeded},
			is:          []error{os.ErrDeadlineExceeded},
			isNot:       []error{ErrWriteStalled},
			wantTimeout: true,
		},
		{
			name:        "stalled",
			err:         &Error{Op: "write", Kind: ErrWriteStalled},
			is:          []error{ErrWriteStalled},
			isNot:       []error{os.ErrDeadlineExceeded},
			wantTimeout: true,
		},
		{
			name: "closed locally",
			err:  &Error{Op: "write", Kind: net.ErrClosed},
			is:   []error{net.ErrClosed},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, target := range tt.is {
				if !errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = false, want true", tt.err, target)
				}
			}
			for _, target := range tt.isNot {
				if errors.Is(tt.err, target) {
					t.Errorf("errors.Is(%v, %v) = true, want false", tt.err, target)
				}
			}
			var nerr net.Error = tt.err
			if got := nerr.Timeout(); got != tt.wantTimeout {
				t.Errorf("Timeout() = %v, want %v", got, tt.wantTimeout)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := &Error{Op: "read", Kind: ErrStreamReset, Remote: true, Code: 3}
	if got, want := err.Error(), "read: stream reset by peer (code 3)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	err = &Error{Op: "session", Kind: ErrSessionClosed, Err: ErrKeepaliveTimeout}
	if got, want := err.Error(), "session: session closed: keepalive timeout: peer did not answer a ping"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
