package edge

import (
	"maps"
	"math/rand/v2"
	"strconv"
	"testing"
)

// A chain of revisions, each changing a few keys of its parent, reads the
// same as plain maps copied at every revision, and no revision changes
// what an earlier one reads.
func TestLayeredMatchesCopiedMaps(t *testing.T) {
	for _, tc := range []struct {
		name            string
		keys, revisions int
		perRevision     int
	}{
		{"small site, many revisions", 20, 400, 1},
		{"large site, one change each", 3000, 300, 1},
		{"large site, bursts", 3000, 60, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			key := func() string { return "h" + strconv.Itoa(rng.IntN(tc.keys*2)) }
			m, want := newLayered[int](), map[string]int{}
			for i := range tc.keys {
				k := "h" + strconv.Itoa(i)
				m.set(k, i)
				want[k] = i
			}
			var chain []layered[int]
			var wants []map[string]int
			for r := range tc.revisions {
				chain, wants = append(chain, m), append(wants, want)
				m, want = m.next(), maps.Clone(want)
				for range tc.perRevision {
					k := key()
					if rng.IntN(3) == 0 {
						m.del(k)
						delete(want, k)
					} else {
						m.set(k, r)
						want[k] = r
					}
				}
			}
			chain, wants = append(chain, m), append(wants, want)
			for i := range chain {
				got := map[string]int{}
				for k, v := range chain[i].all() {
					got[k] = v
				}
				if !maps.Equal(got, wants[i]) || chain[i].len() != len(wants[i]) {
					t.Fatalf("revision %d: %d keys (len %d), want %d", i, len(got), chain[i].len(), len(wants[i]))
				}
				for k := range tc.keys * 2 {
					hk := "h" + strconv.Itoa(k)
					v, ok := chain[i].get(hk)
					wv, wok := wants[i][hk]
					if ok != wok || v != wv {
						t.Fatalf("revision %d: get(%s) = %d, %v; want %d, %v", i, hk, v, ok, wv, wok)
					}
				}
			}
		})
	}
}
