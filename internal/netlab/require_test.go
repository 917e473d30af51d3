package netlab

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRequire(t *testing.T) {
	Require(t)
	// Reaching here means the probe succeeded; the probe namespace must be gone.
	if err := probe(); err != nil {
		t.Fatalf("probe() = %v after Require passed, want nil", err)
	}
}
