package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// Hash is the canonical hash of a snapshot's desired state: sha256 over the
// canonical hashes of the site and of each distribution, by name, each
// being sha256 over canonical JSON. Revision, time, reason and
// Snapshot.Outputs (a copy of each distribution's rendered outputs, which
// are hashed with it) are left out, so applying the same files twice gives
// the same hash, whatever the map or file order. The JSON is normalised
// (nulls, empty lists and empty objects dropped) so a snapshot built in Go
// and one read back from the store hash alike even where one holds nil and
// the other an empty slice.
//
// Normalising is most of the cost, and a site of 10,000 distributions
// changes one at a time: each object's canonical hash is remembered by the
// hash of its plain JSON, so hashing the next revision normalises only
// what changed.
func Hash(s *Snapshot) string {
	order := make([]int, len(s.Distributions))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(s.Distributions[a].Name, s.Distributions[b].Name) })
	h := sha256.New()
	site := objectHash(&s.Site)
	h.Write(site[:])
	for _, i := range order {
		d := &s.Distributions[i]
		dh := objectHash(d)
		h.Write([]byte(d.Name))
		h.Write([]byte{0})
		h.Write(dh[:])
	}
	// Stacks are hashed only when there are some, so the hash of a site
	// without stacks is what it always was.
	if len(s.Stacks) > 0 {
		st := slices.Clone(s.Stacks)
		slices.SortFunc(st, func(a, b Stack) int { return strings.Compare(a.Name, b.Name) })
		h.Write([]byte("\x00stacks\x00"))
		for i := range st {
			sh := objectHash(&st[i])
			h.Write([]byte(st[i].Name))
			h.Write([]byte{0})
			h.Write(sh[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// objectHash is the canonical hash of one object.
func objectHash(v any) [sha256.Size]byte {
	raw := mustJSON(v)
	key := sha256.Sum256(raw)
	canonMemo.mu.Lock()
	c, ok := canonMemo.m[key]
	canonMemo.mu.Unlock()
	if ok {
		return c
	}
	out, _ := json.Marshal(normalise(raw))
	c = sha256.Sum256(out)
	canonMemo.mu.Lock()
	if len(canonMemo.m) >= canonMemoSize {
		clear(canonMemo.m) // a new site, or a long-running process: start over
	}
	canonMemo.m[key] = c
	canonMemo.mu.Unlock()
	return c
}

// canonMemoSize bounds the memo (64 bytes an entry): several revisions of
// the largest sites the store takes.
const canonMemoSize = 100_000

var canonMemo = struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte][sha256.Size]byte
}{m: map[[sha256.Size]byte][sha256.Size]byte{}}

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
