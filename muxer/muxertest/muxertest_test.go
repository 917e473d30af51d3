package muxertest

import (
	"bytes"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The suite's checksums rely on RandomData being reproducible and on
// different seeds giving different data.
func TestRandomData(t *testing.T) {
	a, b := RandomData(7, 4096), RandomData(7, 4096)
	if !bytes.Equal(a, b) {
		t.Errorf("RandomData(7) differs between calls")
	}
	if c := RandomData(8, 4096); bytes.Equal(a, c) {
		t.Errorf("RandomData(7) and RandomData(8) are equal")
	}
	if got := len(RandomData(1, 1000)); got != 1000 {
		t.Errorf("len(RandomData(1, 1000)) = %d, want 1000", got)
	}
}
