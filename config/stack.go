package config

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// A Stack is a document of shared values, as a nested stack of Heat or a
// CloudFormation stack whose outputs others import with Fn::ImportValue:
// parameters in, typed outputs out, nothing running of its own. A
// distribution (or another stack) imports an output as
// ${stack.NAME.outputs.KEY}; NAME is a Stack or a Distribution (whose
// outputs are strings). Rendering resolves imports in the order of the
// import graph, so an output that changes re-renders every importer in
// the same revision.

// OutputType says what an output holds, so that an import is checked
// where it is used.
type OutputType string

const (
	OutputString   OutputType = "string"
	OutputURL      OutputType = "url"
	OutputPort     OutputType = "port"
	OutputDuration OutputType = "duration"
	OutputList     OutputType = "list"
)

var outputTypes = []OutputType{OutputString, OutputURL, OutputPort, OutputDuration, OutputList}

// Stack is a rendered Stack document.
type Stack struct {
	Name        string               `json:"name"`
	Description string               `json:"description,omitempty"`
	Parameters  map[string]Parameter `json:"parameters,omitempty"`
	Outputs     map[string]Output    `json:"outputs,omitempty"`
	// Imports is as Distribution.Imports, for the stack's outputs.
	Imports map[string]string `json:"imports,omitempty"`
}

// Output is one typed value a stack exports.
type Output struct {
	Type OutputType `json:"type"`
	// Value holds a scalar output; List a list output.
	Value       string   `json:"value,omitempty"`
	List        []string `json:"list,omitempty"`
	Description string   `json:"description,omitempty"`
}

// String shows an output as an importer sees it.
func (o Output) String() string {
	if o.Type == OutputList {
		return "[" + strings.Join(o.List, ", ") + "]"
	}
	return o.Value
}

// checkValue reports why a value does not fit the type, or "".
func (t OutputType) checkValue(v string) string {
	switch t {
	case OutputURL:
		u, err := url.Parse(v)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Sprintf("%q is not an absolute URL (want scheme://host...)", v)
		}
	case OutputPort:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("%q is not a port (1 to 65535)", v)
		}
	case OutputDuration:
		if _, err := ParseDuration(v); err != nil {
			return err.Error()
		}
	}
	return ""
}

// importPrefix starts every import reference.
const importPrefix = "stack."

// importRef is ${stack.NAME.outputs.KEY} taken apart.
type importRef struct{ stack, output string }

func (r importRef) String() string {
	return "${" + importPrefix + r.stack + ".outputs." + r.output + "}"
}

// parseImport reads the inside of ${...}; ok is false when it is not an
// import, err set when it is one, malformed.
func parseImport(name string) (ref importRef, ok bool, err error) {
	rest, ok := strings.CutPrefix(name, importPrefix)
	if !ok {
		return ref, false, nil
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[1] != "outputs" || parts[0] == "" || parts[2] == "" {
		return ref, true, fmt.Errorf("malformed import ${%s} (want ${stack.NAME.outputs.KEY})", name)
	}
	return importRef{parts[0], parts[2]}, true, nil
}

// references returns the names inside every ${...} of s, skipping $${
// escapes.
func references(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return out
			}
			out = append(out, s[i+2:i+end])
			i += end + 1
		default:
			i++
		}
	}
	return out
}

// importsOf lists the imports of declared texts (an Imports map), sorted
// and without repeats.
func importsOf(declared map[string]string) []importRef {
	var out []importRef
	for _, text := range declared {
		for _, name := range references(text) {
			if r, ok, err := parseImport(name); ok && err == nil {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b importRef) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// exports returns what the named stack or distribution of s exports, or
// nil when neither exists.
func (s *Snapshot) exports(name string) map[string]Output {
	if st := s.Stack(name); st != nil {
		return st.Outputs
	}
	if d := s.lookup(name); d != nil {
		out := make(map[string]Output, len(d.Outputs))
		for k, v := range d.Outputs {
			out[k] = Output{Type: OutputString, Value: v}
		}
		return out
	}
	return nil
}

// lookup finds a distribution by binary search: a snapshot keeps its
// distributions in name order (rendering, NewSnapshot and the store do;
// the controller sorts what its API is given), and the import checks look
// up one exporter per import, on sites of thousands.
func (s *Snapshot) lookup(name string) *Distribution {
	if i, ok := slices.BinarySearchFunc(s.Distributions, name, func(d Distribution, n string) int { return strings.Compare(d.Name, n) }); ok {
		return &s.Distributions[i]
	}
	return nil
}

// SortDistributions puts the distributions in name order, as a snapshot
// keeps them. A sorted snapshot is only read: it may be shared.
func (s *Snapshot) SortDistributions() {
	if !slices.IsSortedFunc(s.Distributions, func(a, b Distribution) int { return strings.Compare(a.Name, b.Name) }) {
		sortDistributions(s.Distributions)
	}
}

// OutputRef names one output: "shared.originUrl".
type OutputRef = string

// ChangedOutputs lists the outputs (stack.key) whose value differs between
// old and new, or that one of them lacks: stacks are compared whole, and
// distributions only where changed names them (the distributions a
// revision changed), so the work follows the change.
func ChangedOutputs(old, new *Snapshot, changed []string) []OutputRef {
	var out []OutputRef
	cmp := func(name string, a, b map[string]Output) {
		for k, v := range a {
			if w, ok := b[k]; !ok || w.String() != v.String() || w.Type != v.Type {
				out = append(out, name+"."+k)
			}
		}
		for k := range b {
			if _, ok := a[k]; !ok {
				out = append(out, name+"."+k)
			}
		}
	}
	names := map[string]bool{}
	for _, s := range []*Snapshot{old, new} {
		if s == nil {
			continue
		}
		for i := range s.Stacks {
			names[s.Stacks[i].Name] = true
		}
	}
	for _, n := range changed {
		names[n] = true
	}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		var a, b map[string]Output
		if old != nil {
			a = old.exports(n)
		}
		if new != nil {
			b = new.exports(n)
		}
		cmp(n, a, b)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Reach is an importer an output change reaches, and through what.
type Reach struct {
	// Object is "stack NAME" or "distribution NAME".
	Object string `json:"object"`
	// Via lists the changed outputs it imports ("shared.originUrl").
	Via []string `json:"via"`
}

// Importers lists every stack and distribution of s that imports one of
// outputs, in name order. Given every output that changed (ChangedOutputs,
// which sees a stack re-rendered by an upstream change as changed too),
// that is every object a change reaches, however deep. It reads the
// Imports of each object: the import index is what the store keeps, not a
// second structure to keep in step.
func Importers(s *Snapshot, outputs []OutputRef) []Reach {
	if len(outputs) == 0 || s == nil {
		return nil
	}
	want := map[string]bool{}
	for _, o := range outputs {
		want[o] = true
	}
	var out []Reach
	add := func(object string, declared map[string]string) {
		var via []string
		for _, r := range importsOf(declared) {
			if o := r.stack + "." + r.output; want[o] {
				via = append(via, o)
			}
		}
		if len(via) > 0 {
			out = append(out, Reach{Object: object, Via: via})
		}
	}
	for i := range s.Stacks {
		add("stack "+s.Stacks[i].Name, s.Stacks[i].Imports)
	}
	for i := range s.Distributions {
		if d := &s.Distributions[i]; len(d.Imports) > 0 {
			add("distribution "+d.Name, d.Imports)
		}
	}
	slices.SortFunc(out, func(a, b Reach) int { return strings.Compare(a.Object, b.Object) })
	return out
}

// imports checks, on a snapshot that did not come from files (the store,
// promote), that every recorded import still finds its output and that
// stacks hold outputs of their type. Rendering checks the same with
// positions, so it is skipped there.
func (c *checker) imports(s *Snapshot) {
	if c.locs != nil {
		return
	}
	names := map[string]bool{}
	for i := range s.Stacks {
		st := &s.Stacks[i]
		o := "stack " + st.Name
		if !nameRE.MatchString(st.Name) {
			c.errf(o, "name", "invalid stack name %q (a DNS label)", st.Name)
		} else if names[st.Name] || s.lookup(st.Name) != nil {
			c.errf(o, "name", "duplicate name %q (stacks and distributions share one namespace)", st.Name)
		}
		names[st.Name] = true
		for _, k := range slices.Sorted(maps.Keys(st.Outputs)) {
			out := st.Outputs[k]
			switch {
			case !slices.Contains(outputTypes, out.Type):
				c.errf(o, "outputs."+k+".type", "unknown output type %q", out.Type)
			case out.Type != OutputList && len(out.List) > 0, out.Type == OutputList && out.Value != "":
				c.errf(o, "outputs."+k, "a %s output holds the wrong kind of value", out.Type)
			default:
				if msg := out.Type.checkValue(out.Value); msg != "" {
					c.errf(o, "outputs."+k+".value", "%s output: %s", out.Type, msg)
				}
			}
		}
		c.resolves(s, o, st.Imports)
	}
	for i := range s.Distributions {
		if d := &s.Distributions[i]; len(d.Imports) > 0 {
			c.resolves(s, "distribution "+d.Name, d.Imports)
		}
	}
}

func (c *checker) resolves(s *Snapshot, obj string, declared map[string]string) {
	for _, path := range slices.Sorted(maps.Keys(declared)) {
		for _, name := range references(declared[path]) {
			r, ok, err := parseImport(name)
			if !ok {
				continue
			}
			if err != nil {
				c.errf(obj, path, "%v", err)
				continue
			}
			outs := s.exports(r.stack)
			if outs == nil {
				c.errf(obj, path, "imports %s, but no Stack or Distribution is named %q", r, r.stack)
			} else if _, ok := outs[r.output]; !ok {
				c.errf(obj, path, "imports %s, but %s has no output %q; an output still imported cannot be removed", r, r.stack, r.output)
			}
		}
	}
}

// Override records that an operation other than rendering (promote,
// auto-heal) set the field at path: it no longer holds what its
// declaration imported, so the import record of path, and of every field
// below it, goes. Export then writes the value it holds.
func (d *Distribution) Override(path string) {
	for p := range d.Imports {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			delete(d.Imports, p)
		}
	}
	if len(d.Imports) == 0 {
		d.Imports = nil
	}
}
