package edge

import "testing"

// The limit leaves the heap outside the cache half as much room again, and a
// small node the fixed slack the RSS target was set with.
func TestMemoryLimitFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name           string
		cache, outside int64
		want           int64
	}{
		{"a small site", 256 * mib, 6 * mib, 256*mib + memorySlack},
		{"nothing measured yet", 256 * mib, 0, 256*mib + memorySlack},
		{"more cached than the last collection saw", 256 * mib, -40 * mib, 256*mib + memorySlack},
		{"10,000 distributions", 4 * mib, 90 * mib, 4*mib + 135*mib},
		{"the slack until the rest needs more", 256 * mib, 16 * mib, 256*mib + memorySlack},
	} {
		if got := memoryLimitFor(tc.cache, tc.outside); got != tc.want {
			t.Errorf("%s: limit %d MiB, want %d MiB", tc.name, got/mib, tc.want/mib)
		}
	}
}
