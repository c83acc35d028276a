package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// stackBuiltins are the references a Stack may use besides its parameters
// and imports.
var stackBuiltins = []string{"site.name", "zone"}

// stackDoc is what the generic decoder reads of a Stack document; outputs
// have a shape of their own (a value, a list, or {value, type,
// description}) and are read by outputs.
type stackDoc struct {
	Name        string               `yaml:"name"`
	Description string               `yaml:"description"`
	Parameters  map[string]Parameter `yaml:"parameters"`
}

var stackKeys = map[string]bool{"apiVersion": true, "kind": true, "outputs": true}

// runStack renders a Stack document: parameters settled, imports
// resolved, outputs typed and checked.
func (r *renderer) runStack() (Stack, *decoder) {
	r.values = map[string]string{
		"site.name": r.site.Name,
		"zone":      strings.TrimSuffix(r.site.DNS.Zone, "."),
	}
	root := copyTree(r.doc.root)
	effective := r.parameters(root)
	var outNode *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "outputs" {
			outNode = root.Content[i+1]
			r.subst(outNode, "outputs")
		}
	}
	// An import is recorded by output, whichever form declared it, so
	// that export (which writes the long form) re-imports to the same.
	for p, v := range r.imports {
		if q, ok := strings.CutSuffix(p, ".value"); ok && strings.Count(q, ".") == 1 {
			delete(r.imports, p)
			r.imports[q] = v
		}
	}
	for p, v := range r.notes {
		if q, ok := strings.CutSuffix(p, ".value"); ok && strings.Count(q, ".") == 1 {
			r.notes[q] = v
		}
	}
	dec := newDecoder(r.doc.file, r.errs)
	dec.tolerant = r.tolerant
	dec.notes = r.notes
	var sd stackDoc
	dec.decodeStruct(root, reflect.ValueOf(&sd).Elem(), "", stackKeys)
	st := Stack{Name: r.doc.name, Description: sd.Description, Parameters: sd.Parameters, Imports: r.imports}
	if !r.tolerant {
		for k, v := range effective {
			p := st.Parameters[k]
			p.Default = v
			st.Parameters[k] = p
		}
	}
	st.Outputs = dec.outputs(outNode)
	return st, dec
}

// outputs reads a Stack's outputs: KEY: VALUE (a string), KEY: [VALUES]
// (a list), or KEY: {value: ..., type: ..., description: ...}.
func (d *decoder) outputs(n *yaml.Node) map[string]Output {
	n = d.resolve(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "outputs", "expected a mapping of outputs, got %s", kindName(n))
		return nil
	}
	out := map[string]Output{}
	d.eachKey(n, "outputs", func(key string, k, v *yaml.Node) {
		path := "outputs." + key
		v = d.resolve(v)
		d.pos[path] = pos{v.Line, v.Column}
		if !paramNameRE.MatchString(key) {
			d.errorf(k, path, "invalid output name %q (want letters, digits, '_' or '-', not starting with a digit)", key)
			return
		}
		var o Output
		val, vpath := v, path
		if v.Kind == yaml.MappingNode {
			val, vpath = nil, path+".value"
			d.eachKey(v, path, func(field string, fk, fv *yaml.Node) {
				fv = d.resolve(fv)
				fp := path + "." + field
				d.pos[fp] = pos{fv.Line, fv.Column}
				switch field {
				case "value":
					val = fv
				case "type":
					s, ok := d.scalar(fv, fp, "an output type")
					if !ok {
						return
					}
					if !slices.Contains(outputTypes, OutputType(s)) {
						d.errorf(fv, fp, "unknown output type %q (want one of string, url, port, duration, list)", s)
						return
					}
					o.Type = OutputType(s)
				case "description":
					if s, ok := d.scalar(fv, fp, "a string"); ok {
						o.Description = s
					}
				default:
					d.errorf(fk, fp, "unknown key %q (known keys: value, type, description)", field)
				}
			})
			if val == nil {
				d.errorf(v, vpath, "missing (an output needs a value)")
				return
			}
		}
		switch {
		case val.Kind == yaml.ScalarNode && !isNull(val):
			if o.Type == OutputList {
				d.errorf(val, vpath, "type list needs a list value, got %s", kindName(val))
				return
			}
			o.Value = val.Value
			if o.Type == "" {
				o.Type = OutputString
			}
			if !(d.tolerant && hasParam(o.Value)) {
				if msg := o.Type.checkValue(o.Value); msg != "" {
					d.errorf(val, vpath, "%s output: %s", o.Type, msg)
					return
				}
			}
		case val.Kind == yaml.SequenceNode:
			if o.Type != "" && o.Type != OutputList {
				d.errorf(val, vpath, "a list value needs type list, not %s", o.Type)
				return
			}
			o.Type, o.List = OutputList, []string{}
			for i, c := range val.Content {
				c = d.resolve(c)
				if c.Kind != yaml.ScalarNode || isNull(c) {
					d.errorf(c, fmt.Sprintf("%s[%d]", vpath, i), "expected a string, got %s", kindName(c))
					return
				}
				o.List = append(o.List, c.Value)
			}
		default:
			d.errorf(val, vpath, "expected a value or a list, got %s", kindName(val))
			return
		}
		out[key] = o
	})
	return out
}
