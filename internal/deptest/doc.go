// Package deptest holds only a test: it enforces ARCHITECTURE.md's layering, so
// that a lower layer never imports a higher one and siblings on one layer
// never import each other.
package deptest
