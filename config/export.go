package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Export writes a snapshot back out as a config directory that Load reads
// to the same hash: site.yaml, stacks/NAME.yaml and distributions/NAME.yaml.
//
// What it writes is what the store keeps. The store keeps rendered state:
// defaults filled, parameters substituted. So a distribution is written as
// rendered, its parameters declared with the value each had as default
// (re-rendering substitutes nothing new and fills no new default: the hash
// is the same), except that every field that imported another stack's
// output is written as declared (${stack.NAME.outputs.KEY}, kept in
// Imports), so the exported files keep their import graph. A literal ${
// in a value is written $${.
//
// dir must not exist or be empty: a file left there would be read with
// the exported ones.
func Export(s *Snapshot, dir string) ([]string, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("config: export: %s is not empty", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: export: %w", err)
	}
	header := fmt.Sprintf("# Exported from revision %d (hash %.12s).\n", s.Revision, s.Hash)
	var files []string
	write := func(rel string, root *yaml.Node) error {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("config: export: %w", err)
		}
		var b strings.Builder
		b.WriteString(header)
		enc := yaml.NewEncoder(&b)
		enc.SetIndent(2)
		if err := enc.Encode(root); err != nil {
			return fmt.Errorf("config: export %s: %w", rel, err)
		}
		enc.Close()
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("config: export: %w", err)
		}
		files = append(files, p)
		return nil
	}
	if err := write("site.yaml", ExportSite(&s.Site)); err != nil {
		return nil, err
	}
	for i := range s.Stacks {
		if err := write(filepath.Join("stacks", s.Stacks[i].Name+".yaml"), ExportStack(&s.Stacks[i])); err != nil {
			return nil, err
		}
	}
	for i := range s.Distributions {
		if err := write(filepath.Join("distributions", s.Distributions[i].Name+".yaml"), ExportDistribution(&s.Distributions[i])); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// ExportSite is the site as a Site document.
func ExportSite(s *Site) *yaml.Node {
	root := header(KindSite, s.Name)
	appendFields(root, reflect.ValueOf(s).Elem(), false, "name")
	return root
}

// ExportDistribution is a distribution as a Distribution document.
func ExportDistribution(d *Distribution) *yaml.Node {
	root := header(KindDistribution, d.Name)
	if len(d.Parameters) > 0 {
		addKey(root, "parameters", parameters(d.Parameters))
	}
	// Under spec and outputs ${ is a reference: literal ones are escaped.
	addKey(root, "spec", encode(reflect.ValueOf(d.Spec), true))
	if len(d.Outputs) > 0 {
		addKey(root, "outputs", encode(reflect.ValueOf(d.Outputs), true))
	}
	restoreImports(root, d.Imports)
	return root
}

// ExportStack is a stack as a Stack document, outputs in their long form.
func ExportStack(st *Stack) *yaml.Node {
	root := header(KindStack, st.Name)
	if st.Description != "" {
		addKey(root, "description", str(st.Description))
	}
	if len(st.Parameters) > 0 {
		addKey(root, "parameters", parameters(st.Parameters))
	}
	if len(st.Outputs) > 0 {
		outs := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range slices.Sorted(maps.Keys(st.Outputs)) {
			o := st.Outputs[k]
			m := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
			addKey(m, "type", str(string(o.Type)))
			if o.Type == OutputList {
				l := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
				for _, v := range o.List {
					l.Content = append(l.Content, str(escape(v)))
				}
				addKey(m, "value", l)
			} else {
				addKey(m, "value", str(escape(o.Value)))
			}
			if o.Description != "" {
				addKey(m, "description", str(escape(o.Description)))
			}
			addKey(outs, k, m)
		}
		addKey(root, "outputs", outs)
	}
	imports := make(map[string]string, len(st.Imports))
	for p, v := range st.Imports {
		imports[p+".value"] = v // recorded by output, written in the long form
	}
	restoreImports(root, imports)
	return root
}

// parameters writes declared parameters with their value as default,
// always: an empty default is still one.
func parameters(ps map[string]Parameter) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range slices.Sorted(maps.Keys(ps)) {
		p := &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
		addKey(p, "default", str(ps[k].Default))
		if d := ps[k].Description; d != "" {
			addKey(p, "description", str(d))
		}
		addKey(m, k, p)
	}
	return m
}

func header(kind, name string) *yaml.Node {
	root := &yaml.Node{Kind: yaml.MappingNode}
	addKey(root, "apiVersion", &yaml.Node{Kind: yaml.ScalarNode, Value: APIVersion})
	addKey(root, "kind", &yaml.Node{Kind: yaml.ScalarNode, Value: kind})
	addKey(root, "name", &yaml.Node{Kind: yaml.ScalarNode, Value: name})
	return root
}

func addKey(m *yaml.Node, k string, v *yaml.Node) {
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, v)
}

// str is a string scalar, quoted so that YAML never reads it as anything
// else ("yes", "1.0", "*").
func str(s string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
}

func escape(s string) string { return strings.ReplaceAll(s, "${", "$${") }

// encode writes a value as the decoder reads it: struct fields by their
// yaml tag, zero fields left out (the decoder leaves them zero), units in
// their written form.
func encode(v reflect.Value, esc bool) *yaml.Node {
	switch v.Type() {
	case durationType:
		return str(v.Interface().(Duration).String())
	case sizeType:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case prefixType:
		return str(v.Interface().(netip.Prefix).String())
	case addrType:
		return str(v.Interface().(netip.Addr).String())
	case selectionType:
		sel := v.Interface().(Selection)
		if sel.All {
			return str("all")
		}
		l := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, n := range sel.Names {
			l.Content = append(l.Content, str(n))
		}
		if len(l.Content) == 0 {
			return str("none")
		}
		return l
	}
	switch v.Kind() {
	case reflect.Pointer:
		return encode(v.Elem(), esc)
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		appendFields(m, v, esc)
		return m
	case reflect.Slice:
		l := &yaml.Node{Kind: yaml.SequenceNode}
		switch v.Type().Elem().Kind() {
		case reflect.Struct, reflect.Pointer, reflect.Slice, reflect.Map:
		default:
			l.Style = yaml.FlowStyle // [GET, HEAD]
		}
		for i := range v.Len() {
			l.Content = append(l.Content, encode(v.Index(i), esc))
		}
		return l
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			addKey(m, k.String(), encode(v.MapIndex(k), esc))
		}
		return m
	case reflect.String:
		if esc {
			return str(escape(v.String()))
		}
		return str(v.String())
	case reflect.Bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v.Bool())}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(v.Int(), 10)}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v.Uint(), 10)}
	case reflect.Float32, reflect.Float64:
		s := strconv.FormatFloat(v.Float(), 'g', -1, 64)
		if !strings.ContainsAny(s, ".eE") {
			s += ".0" // a float, also to YAML
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: s}
	}
	panic("config: export: cannot encode " + v.Type().String())
}

// appendFields adds a struct's non-zero fields that have a yaml name,
// except skip.
func appendFields(m *yaml.Node, v reflect.Value, esc bool, skip ...string) {
	si := fieldsOf(v.Type())
	for _, name := range si.names {
		f := v.FieldByIndex(si.fields[name].index)
		if f.IsZero() || slices.Contains(skip, name) {
			continue
		}
		if (f.Kind() == reflect.Slice || f.Kind() == reflect.Map) && f.Len() == 0 {
			continue
		}
		addKey(m, name, encode(f, esc))
	}
}

// restoreImports puts each importing field's declared text back at its
// path, creating the field where its rendered value was zero (and so left
// out).
func restoreImports(root *yaml.Node, imports map[string]string) {
	for _, p := range slices.Sorted(maps.Keys(imports)) {
		n := nodeAt(root, p)
		if n == nil {
			continue // a path the document cannot hold: written as rendered
		}
		*n = *str(imports[p])
	}
}

// nodeAt finds (creating mapping keys as needed) the node at a field path
// such as spec.behaviors[0].target or spec.origins.a.b.url, where a key
// may itself hold dots: the longest key that fits wins.
func nodeAt(n *yaml.Node, path string) *yaml.Node {
	for path != "" {
		switch {
		case strings.HasPrefix(path, "["):
			end := strings.IndexByte(path, ']')
			i, err := strconv.Atoi(path[1:max(end, 1)])
			if end < 0 || err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n, path = n.Content[i], path[end+1:]
		case n.Kind == yaml.MappingNode:
			path = strings.TrimPrefix(path, ".")
			var next *yaml.Node
			best := -1
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i].Value
				if rest, ok := strings.CutPrefix(path, k); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') && len(k) > best {
					next, best = n.Content[i+1], len(k)
				}
			}
			if next == nil {
				k := path
				if i := strings.IndexAny(path, ".["); i >= 0 {
					k = path[:i]
				}
				next, best = &yaml.Node{Kind: yaml.MappingNode}, len(k)
				addKey(n, k, next)
			}
			n, path = next, path[best:]
		default:
			return nil
		}
	}
	return n
}
