//go:build race

package nspeer

// RaceEnabled reports whether this binary was built with -race; a test passes
// it as BuildConfig.Race to run its peers under the race detector as well.
const RaceEnabled = true
