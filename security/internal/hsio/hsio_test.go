package hsio

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestWatchFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		stop := Watch(ctx, a)
		start := time.Now()
		_, err := a.Read(make([]byte, 1))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("read error %v, want os.ErrDeadlineExceeded", err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("read unblocked after %v, want 3s", got)
		}
		if !stop() {
			t.Errorf("stop() = false after the context ended, want true")
		}
	})
}

func TestWatchStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		ctx, cancel := context.WithCancel(context.Background())
		stop := Watch(ctx, a)
		if stop() {
			t.Fatalf("stop() = true before the context ended")
		}
		cancel()
		go b.Write([]byte{1})
		if _, err := a.Read(make([]byte, 1)); err != nil {
			t.Errorf("read after stop and cancel: %v, want the context not to matter", err)
		}
	})
}
