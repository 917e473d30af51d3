//go:build race

package main

// raceEnabled: the test binary runs under the race detector, so the binary
// it builds does too (and reuses the race-built packages in the cache).
const raceEnabled = true
