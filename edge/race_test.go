//go:build race

package edge

// raceEnabled: the race detector's instrumentation allocates on some
// paths, so allocation counts are only checked without it.
const raceEnabled = true
