package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Parameters: a distribution declares parameters (with an optional
// default) and refers to them as ${name} anywhere under spec and outputs.
// Built-in references: ${distribution.name}, ${distribution.domain}
// (<name>.<zone without the dot>), ${site.name} and ${zone} (the zone
// without its trailing dot). $${ writes a literal ${. A value that is a
// single reference takes the type of what it expands to, quoted or not, so
// `weight: "${w}"` works for an integer field (inside {flow} mappings the
// quotes are needed: YAML reads { and } there as syntax).

var headerKeys = map[string]bool{"apiVersion": true, "kind": true}

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// builtins are the references every distribution may use.
var builtins = []string{"distribution.name", "distribution.domain", "site.name", "zone"}

// Render substitutes parameters (each distribution's defaults, overridden
// by params given as "dist.name=value" keys "dist.name", or "name" for
// every distribution that declares name), fills defaults, validates the
// result and returns a snapshot with its Hash set (no revision or time).
// A parameter without a default must be given. The error is an
// *ErrorList when the result is invalid.
func (b *Bundle) Render(params map[string]string) (*Snapshot, error) {
	if b == nil || b.site == nil {
		return nil, errors.New("config: Render needs a bundle made by Load or LoadFiles")
	}
	return b.render(params, false)
}

// NewSnapshot builds a snapshot from values made in Go (tests, tools): it
// fills defaults, validates and sets the hash. Nothing is substituted.
func NewSnapshot(site Site, dists []Distribution) (*Snapshot, error) {
	s := &Snapshot{Site: site, Distributions: slices.Clone(dists)}
	sortDistributions(s.Distributions)
	for _, d := range s.Distributions {
		if len(d.Outputs) > 0 {
			if s.Outputs == nil {
				s.Outputs = map[string]map[string]string{}
			}
			s.Outputs[d.Name] = d.Outputs
		}
	}
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s.Hash = Hash(s)
	return s, nil
}

func sortDistributions(ds []Distribution) {
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Name < ds[j].Name })
}

// render runs the whole pipeline. tolerant (used by Load) leaves
// parameters that have no default unresolved and skips checks of values
// that still hold one.
func (b *Bundle) render(params map[string]string, tolerant bool) (*Snapshot, error) {
	var errs ErrorList
	locs := map[string]*decoder{}

	sd := newDecoder(b.site.file, &errs)
	var site Site
	sd.decodeStruct(b.site.root, reflect.ValueOf(&site).Elem(), "", headerKeys)
	locs["site"] = sd

	used := map[string]bool{}
	snap := &Snapshot{Site: site}
	known := map[string]*document{}
	for _, list := range [][]*document{b.stacks, b.dists} {
		for _, d := range list {
			known[d.name] = d
		}
	}
	exports := map[string]map[string]export{}
	for _, doc := range b.importOrder(&errs) {
		r := &renderer{doc: doc, site: &site, params: params, used: used, tolerant: tolerant, errs: &errs, exports: exports, known: known}
		if doc.kind == KindStack {
			st, dec := r.runStack()
			locs[doc.object()] = dec
			snap.Stacks = append(snap.Stacks, st)
			exports[st.Name] = r.exported(st.Outputs, dec)
			continue
		}
		dist, dec := r.run()
		locs[doc.object()] = dec
		snap.Distributions = append(snap.Distributions, dist)
		if len(dist.Outputs) > 0 {
			if snap.Outputs == nil {
				snap.Outputs = map[string]map[string]string{}
			}
			snap.Outputs[dist.Name] = dist.Outputs
		}
		outs := make(map[string]Output, len(dist.Outputs))
		for k, v := range dist.Outputs {
			outs[k] = Output{Type: OutputString, Value: v}
		}
		exports[dist.Name] = r.exported(outs, dec)
	}
	slices.SortFunc(snap.Stacks, func(a, b Stack) int { return strings.Compare(a.Name, b.Name) })
	keys := slices.Sorted(maps.Keys(params))
	for _, k := range keys {
		if !used[k] {
			errs = append(errs, &Error{File: "--param", Field: k, Msg: "no distribution declares this parameter"})
		}
	}
	sortDistributions(snap.Distributions)
	snap.SetDefaults()
	c := &checker{locs: locs, tolerant: tolerant}
	c.check(snap)
	errs = append(errs, c.errs...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	snap.Hash = Hash(snap)
	return snap, nil
}

type renderer struct {
	doc      *document
	site     *Site
	params   map[string]string
	used     map[string]bool
	tolerant bool
	errs     *ErrorList
	values   map[string]string
	declared []string
	// exports are the outputs rendered so far (import order puts every
	// exporter first), known every stack and distribution name.
	exports map[string]map[string]export
	known   map[string]*document
	// imports keeps the declared text of each field that imports, notes
	// what each import was, for errors about the field.
	imports map[string]string
	notes   map[string]string
}

// export is an output as importers see it, and where it was declared.
type export struct {
	Output
	where string // "stack shared (shared.yaml:7:3)"
}

// exported pairs rendered outputs with where they were declared.
func (r *renderer) exported(outs map[string]Output, dec *decoder) map[string]export {
	m := make(map[string]export, len(outs))
	for k, o := range outs {
		where := strings.ToLower(r.doc.kind) + " " + r.doc.name + " (" + r.doc.file
		if p, ok := dec.pos["outputs."+k]; ok {
			where += fmt.Sprintf(":%d:%d", p.Line, p.Col)
		}
		m[k] = export{Output: o, where: where + ")"}
	}
	return m
}

func (r *renderer) errorf(n *yaml.Node, path, format string, args ...any) {
	*r.errs = append(*r.errs, docErr(r.doc, n, path, format, args...))
}

func (r *renderer) run() (Distribution, *decoder) {
	name := r.doc.name
	zone := strings.TrimSuffix(r.site.DNS.Zone, ".")
	r.values = map[string]string{
		"distribution.name":   name,
		"distribution.domain": name + "." + zone,
		"site.name":           r.site.Name,
		"zone":                zone,
	}
	root := copyTree(r.doc.root)
	effective := r.parameters(root)

	for i := 0; i+1 < len(root.Content); i += 2 {
		if k := root.Content[i].Value; k == "spec" || k == "outputs" {
			r.subst(root.Content[i+1], k)
		}
	}

	dec := newDecoder(r.doc.file, r.errs)
	dec.tolerant = r.tolerant
	dec.notes = r.notes
	var dist Distribution
	dec.decodeStruct(root, reflect.ValueOf(&dist).Elem(), "", headerKeys)
	dist.Imports = r.imports
	if !r.tolerant {
		// The snapshot records the value each parameter had, so history
		// and plan show what a revision was rendered with.
		for k, v := range effective {
			p := dist.Parameters[k]
			p.Default = v
			dist.Parameters[k] = p
		}
	}
	return dist, dec
}

// parameters reads the declared parameters and settles each one's value.
func (r *renderer) parameters(root *yaml.Node) map[string]string {
	effective := map[string]string{}
	var pnode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "parameters" {
			pnode = root.Content[i+1]
		}
	}
	for pnode != nil && pnode.Kind == yaml.AliasNode {
		pnode = pnode.Alias
	}
	if pnode == nil || pnode.Kind != yaml.MappingNode {
		return effective // the decoder reports a wrong type
	}
	for i := 0; i+1 < len(pnode.Content); i += 2 {
		k, v := pnode.Content[i], pnode.Content[i+1]
		for v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		name, path := k.Value, "parameters."+k.Value
		if !paramNameRE.MatchString(name) {
			r.errorf(k, path, "invalid parameter name %q (want letters, digits, '_' or '-', not starting with a digit)", name)
			continue
		}
		if name == "zone" {
			r.errorf(k, path, "%q is a built-in reference; pick another name", name)
			continue
		}
		r.declared = append(r.declared, name)
		var def *string
		if v.Kind == yaml.MappingNode {
			for j := 0; j+1 < len(v.Content); j += 2 {
				if v.Content[j].Value == "default" && v.Content[j+1].Kind == yaml.ScalarNode && !isNull(v.Content[j+1]) {
					s := v.Content[j+1].Value
					def = &s
				}
			}
		}
		// A plain name is consumed by every distribution declaring it,
		// even one that overrides it with dist.name.
		if _, ok := r.params[name]; ok {
			r.used[name] = true
		}
		val, ok := r.params[r.doc.name+"."+name]
		if ok {
			r.used[r.doc.name+"."+name] = true
		} else {
			val, ok = r.params[name]
		}
		if !ok && def != nil {
			val, ok = *def, true
		}
		if !ok {
			if !r.tolerant {
				r.errorf(k, path, "has no default and was not given (--param %s=VALUE)", name)
			}
			continue
		}
		r.values[name] = val
		effective[name] = val
	}
	return effective
}

// subst expands references in every scalar under n.
func (r *renderer) subst(n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			r.subst(n.Content[i+1], join(path, n.Content[i].Value))
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			r.subst(c, fmt.Sprintf("%s[%d]", path, i))
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "$") {
			return
		}
		declared := n.Value
		out, whole, list, err := r.expand(n.Value, path)
		if err != nil {
			r.errorf(n, path, "%v", err)
			return
		}
		for _, name := range references(declared) {
			if _, ok, _ := parseImport(name); ok {
				if r.imports == nil {
					r.imports = map[string]string{}
				}
				r.imports[path] = declared
				break
			}
		}
		if list != nil {
			// A whole list output becomes the list itself: spec.edges
			// can be a stack's list of edge nodes.
			n.Kind, n.Tag, n.Style, n.Value = yaml.SequenceNode, "!!seq", 0, ""
			n.Content = make([]*yaml.Node, len(list))
			for i, v := range list {
				n.Content[i] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: n.Line, Column: n.Column}
			}
			return
		}
		if out == n.Value {
			return
		}
		n.Value = out
		if whole {
			// Let the expanded text resolve as if written plainly, so
			// numbers and booleans can come from parameters.
			n.Tag, n.Style = "", 0
		} else {
			n.Tag, n.Style = "!!str", yaml.DoubleQuotedStyle
		}
	}
}

// expand replaces ${name} references; whole reports a value that was
// exactly one reference, list the value of a whole list import.
func (r *renderer) expand(s, path string) (out string, whole bool, list []string, err error) {
	var b strings.Builder
	var errs []string
	refs := 0
	whole = strings.HasPrefix(s, "${") && strings.HasSuffix(s, "}") && strings.Count(s, "${") == 1 && !strings.HasPrefix(s, "$${")
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", false, nil, fmt.Errorf("unterminated ${ in %q", s)
			}
			name := s[i+2 : i+end]
			refs++
			if ref, ok, perr := parseImport(name); ok {
				switch v, msg := r.importValue(ref, perr); {
				case msg != "":
					errs = append(errs, msg)
					b.WriteString(s[i : i+end+1])
				case v == nil:
					b.WriteString(s[i : i+end+1]) // its exporter could not render: reported there
				case v.Type == OutputList && !whole:
					errs = append(errs, fmt.Sprintf("%s is a list output of %s; a list is imported as a whole value, not inside a string", ref, v.where))
				case v.Type == OutputList:
					list = slices.Clone(v.List)
					if list == nil {
						list = []string{}
					}
					r.note(path, ref, v)
				default:
					b.WriteString(v.Value)
					r.note(path, ref, v)
				}
			} else if v, ok := r.values[name]; ok {
				b.WriteString(v)
			} else if r.tolerant && slices.Contains(r.declared, name) {
				b.WriteString(s[i : i+end+1]) // no default yet: Render will tell
			} else {
				known := append(slices.Clone(r.declared), r.builtins()...)
				if !slices.Contains(known, name) {
					errs = append(errs, fmt.Sprintf("unknown parameter ${%s} (known: %s)", name, strings.Join(known, ", ")))
				}
				b.WriteString(s[i : i+end+1])
			}
			i += end + 1
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	if len(errs) > 0 {
		return "", false, nil, errors.New(strings.Join(errs, "; "))
	}
	return b.String(), whole && refs == 1, list, nil
}

// importValue looks an import up among the outputs rendered so far. It
// returns nil without a message when the exporter exists but was not
// rendered (an import cycle, reported at the cycle).
func (r *renderer) importValue(ref importRef, perr error) (*export, string) {
	if perr != nil {
		return nil, perr.Error()
	}
	outs, ok := r.exports[ref.stack]
	doc := r.known[ref.stack]
	if !ok {
		if doc != nil {
			return nil, ""
		}
		return nil, fmt.Sprintf("imports %s, but no Stack or Distribution is named %q", ref, ref.stack)
	}
	v, ok := outs[ref.output]
	if !ok {
		where := fmt.Sprintf("%s %s (%s:%d:%d)", strings.ToLower(doc.kind), doc.name, doc.file, doc.nameNode.Line, doc.nameNode.Column)
		return nil, fmt.Sprintf("imports %s, but %s has no output %q (outputs: %s); an output still imported cannot be removed", ref, where, ref.output, strings.Join(slices.Sorted(maps.Keys(outs)), ", "))
	}
	return &v, ""
}

// note remembers what a field imported, for the errors a type mismatch
// raises when the field is decoded or checked.
func (r *renderer) note(path string, ref importRef, v *export) {
	if r.notes == nil {
		r.notes = map[string]string{}
	}
	r.notes[path] = fmt.Sprintf("imported from %s, a %s output of %s", ref, v.Type, v.where)
}

// builtins are the references a document of this kind may use.
func (r *renderer) builtins() []string {
	if r.doc.kind == KindStack {
		return stackBuiltins
	}
	return builtins
}

// copyTree deep-copies a node tree, pointing aliases at the copied anchors,
// so that substitution never changes the bundle's own tree.
func copyTree(n *yaml.Node) *yaml.Node {
	seen := map[*yaml.Node]*yaml.Node{}
	var cp func(*yaml.Node) *yaml.Node
	cp = func(o *yaml.Node) *yaml.Node {
		if o == nil {
			return nil
		}
		if c, ok := seen[o]; ok {
			return c
		}
		c := *o
		seen[o] = &c
		c.Content = make([]*yaml.Node, len(o.Content))
		for i, x := range o.Content {
			c.Content[i] = cp(x)
		}
		return &c
	}
	out := cp(n)
	for old, c := range seen {
		if old.Kind == yaml.AliasNode && old.Alias != nil {
			if a, ok := seen[old.Alias]; ok {
				c.Alias = a
			} else {
				c.Alias = cp(old.Alias)
			}
		}
	}
	return out
}
