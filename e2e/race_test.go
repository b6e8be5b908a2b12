//go:build race

package e2e

// raceEnabled: this test binary, and so the binaries it builds, use the race detector.
const raceEnabled = true
