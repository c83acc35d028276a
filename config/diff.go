package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"
)

// ChangeKind says what happened to an object between two snapshots.
type ChangeKind string

const (
	Added   ChangeKind = "added"
	Changed ChangeKind = "changed"
	Removed ChangeKind = "removed"
)

// Change is one object that differs: "site", "stack <name>" or
// "distribution <name>".
// Fields lists the changed fields of a Changed object as
// "path: old -> new" (spec.originGroups.web.active: blue -> green), with
// <none> for a side where the field is absent, or "path: added" /
// "path: removed" for a whole object (nodes[seoul-edge-2]: added).
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Object string     `json:"object"`
	Fields []string   `json:"fields,omitempty"`
}

// Diff compares two snapshots; old may be nil (nothing applied yet). The
// comparison uses the same normalised form as Hash, so Diff is empty
// exactly when the hashes are equal. Lists of named things (nodes, clouds,
// links) are matched by name, so inserting a node shows as one field, not
// as every later index changing.
func Diff(old, new *Snapshot) []Change {
	// Plain JSON first: most of a large site is the same in both, and
	// only objects whose JSON differs are normalised and compared.
	objs := func(s *Snapshot) map[string][]byte {
		m := map[string][]byte{}
		if s == nil {
			return m
		}
		m["site"] = mustJSON(&s.Site)
		for i := range s.Distributions {
			d := &s.Distributions[i]
			m["distribution "+d.Name] = mustJSON(d)
		}
		for i := range s.Stacks {
			m["stack "+s.Stacks[i].Name] = mustJSON(&s.Stacks[i])
		}
		return m
	}
	a, b := objs(old), objs(new)
	for k, x := range a {
		if y, ok := b[k]; ok && bytes.Equal(x, y) {
			delete(a, k)
			delete(b, k)
		}
	}
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	// The site first, then distributions and stacks by name.
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == "site") != (names[j] == "site") {
			return names[i] == "site"
		}
		return names[i] < names[j]
	})
	var out []Change
	for _, n := range names {
		x, inA := a[n]
		y, inB := b[n]
		switch {
		case !inA:
			out = append(out, Change{Kind: Added, Object: n})
		case !inB:
			out = append(out, Change{Kind: Removed, Object: n})
		default:
			var fields []string
			diffValue(&fields, "", normalise(x), normalise(y))
			if len(fields) > 0 {
				out = append(out, Change{Kind: Changed, Object: n, Fields: fields})
			}
		}
	}
	return out
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("config: " + err.Error())
	}
	return b
}

func diffValue(out *[]string, path string, a, b any) {
	switch x := a.(type) {
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			keys := make([]string, 0, len(x)+len(y))
			for k := range x {
				keys = append(keys, k)
			}
			for k := range y {
				if _, ok := x[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				diffValue(out, join(path, k), x[k], y[k])
			}
			return
		}
	case []any:
		if y, ok := b.([]any); ok {
			if ka, kb := byName(x), byName(y); ka != nil && kb != nil {
				var keys []string
				for _, e := range x {
					keys = append(keys, e.(map[string]any)["name"].(string))
				}
				for _, e := range y {
					if n := e.(map[string]any)["name"].(string); ka[n] == nil {
						keys = append(keys, n)
					}
				}
				for _, k := range keys {
					diffValue(out, fmt.Sprintf("%s[%s]", path, k), orNil(ka[k]), orNil(kb[k]))
				}
				return
			}
			for i := range max(len(x), len(y)) {
				var ea, eb any
				if i < len(x) {
					ea = x[i]
				}
				if i < len(y) {
					eb = y[i]
				}
				diffValue(out, fmt.Sprintf("%s[%d]", path, i), ea, eb)
			}
			return
		}
	}
	if reflect.DeepEqual(a, b) { // normalised trees: maps, slices, strings, json.Number, bools
		return
	}
	// A whole object or list appearing or going says so in a word: its
	// JSON would be noise.
	switch {
	case a == nil && composite(b):
		*out = append(*out, path+": added")
	case b == nil && composite(a):
		*out = append(*out, path+": removed")
	default:
		*out = append(*out, fmt.Sprintf("%s: %s -> %s", path, show(a), show(b)))
	}
}

// byName indexes a list of objects by their "name", or returns nil when
// the elements are not all uniquely named objects.
func byName(l []any) map[string]map[string]any {
	m := map[string]map[string]any{}
	for _, e := range l {
		o, ok := e.(map[string]any)
		if !ok {
			return nil
		}
		n, ok := o["name"].(string)
		if !ok || m[n] != nil {
			return nil
		}
		m[n] = o
	}
	return m
}

func composite(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

func orNil(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "<none>"
	case string:
		if x == "" || strings.ContainsAny(x, " \t\n\"") || strings.Contains(x, "->") {
			return fmt.Sprintf("%q", x)
		}
		return x
	}
	s := string(mustJSON(v))
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// FormatDiff writes changes for people: "+ distribution blog" for an added
// object, "- ..." for a removed one, "~ ..." followed by one indented line
// per field for a changed one, and "no changes" when there are none.
func FormatDiff(w io.Writer, changes []Change) {
	if len(changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	for _, c := range changes {
		sign := map[ChangeKind]string{Added: "+", Changed: "~", Removed: "-"}[c.Kind]
		fmt.Fprintf(w, "%s %s\n", sign, c.Object)
		for _, f := range c.Fields {
			fmt.Fprintf(w, "    %s\n", f)
		}
	}
}
