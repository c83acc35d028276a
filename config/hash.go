package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
)

// Hash is the canonical hash of a snapshot's desired state: sha256 over
// canonical JSON of the site and the distributions sorted by name. Revision,
// time, reason and Snapshot.Outputs (a copy of each distribution's
// rendered outputs, which are hashed with it) are left out, so
// applying the same files twice gives the same hash, whatever the map or
// file order. The JSON is normalised (nulls, empty lists and empty objects
// dropped) so a snapshot built in Go and one read back from the store hash
// alike even where one holds nil and the other an empty slice.
func Hash(s *Snapshot) string {
	h := sha256.Sum256(canonicalJSON(canonicalState(s)))
	return hex.EncodeToString(h[:])
}

type state struct {
	Site          any `json:"site"`
	Distributions any `json:"distributions"`
	// Stacks are left out when there are none (normalise drops them), so
	// the hash of a site without stacks is what it always was.
	Stacks any `json:"stacks"`
}

func canonicalState(s *Snapshot) state {
	ds := append([]Distribution(nil), s.Distributions...)
	sortDistributions(ds)
	st := append([]Stack(nil), s.Stacks...)
	slices.SortFunc(st, func(a, b Stack) int { return strings.Compare(a.Name, b.Name) })
	return state{Site: &s.Site, Distributions: ds, Stacks: st}
}

// canonicalJSON marshals v, then rebuilds it as generic values with empty
// parts dropped; encoding/json writes map keys sorted.
func canonicalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only unsupported types fail, and the schema has none.
		panic("config: canonical JSON: " + err.Error())
	}
	out, _ := json.Marshal(normalise(b))
	return out
}

// normalise decodes JSON with exact numbers and prunes empty values.
func normalise(b []byte) any {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return nil
	}
	x, _ = prune(x)
	return x
}

// prune drops nulls, empty lists and empty objects, reporting whether
// anything is left.
func prune(x any) (any, bool) {
	switch v := x.(type) {
	case nil:
		return nil, false
	case map[string]any:
		for k, e := range v {
			if p, ok := prune(e); ok {
				v[k] = p
			} else {
				delete(v, k)
			}
		}
		return v, len(v) > 0
	case []any:
		if len(v) == 0 {
			return nil, false
		}
		for i, e := range v {
			p, _ := prune(e) // keep list positions: an emptied element still counts
			if p == nil {
				p = map[string]any{}
			}
			v[i] = p
		}
		return v, true
	}
	return x, true
}
