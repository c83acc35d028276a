package config

import (
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// The decoder walks yaml.Node trees itself instead of using yaml.Unmarshal:
// Unmarshal stops at the first error and knows nothing of our unit types,
// while a user fixing a config wants every error of a file at once, each with
// file:line:column and the field path.

// pos is where a value sits in its file.
type pos struct{ Line, Col int }

// maxNodes bounds the work per document: aliases can make a small file
// expand into a huge tree ("billion laughs").
const maxNodes = 200000

type decoder struct {
	file string
	errs *ErrorList
	// pos maps a field path (spec.behaviors[1].target) to the position of
	// its value, so that later semantic checks can point at it too.
	pos map[string]pos
	// tolerant skips values still holding a ${param} in fields that are not
	// strings: at load time a parameter without a default is not known yet.
	tolerant bool
	// bad holds the paths the decoder already reported, so the semantic
	// checks do not report the same field again ("missing CIDR" after
	// "invalid CIDR").
	bad map[string]bool
	// notes says what a field imported from another stack, to add to
	// errors about it or below it.
	notes   map[string]string
	nodes   int
	stopped bool
}

func newDecoder(file string, errs *ErrorList) *decoder {
	return &decoder{file: file, errs: errs, pos: map[string]pos{}, bad: map[string]bool{}}
}

// note returns what path or a field above it imported, as " (imported
// from ...)", or "".
func (d *decoder) note(path string) string {
	if d == nil || len(d.notes) == 0 {
		return ""
	}
	for p := path; ; p = parentPath(p) {
		if n, ok := d.notes[p]; ok {
			return " (" + n + ")"
		}
		if p == "" {
			return ""
		}
	}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: d.file, Field: path, Msg: fmt.Sprintf(format, args...) + d.note(path)}
	d.bad[path] = true
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	*d.errs = append(*d.errs, e)
}

var (
	durationType  = reflect.TypeFor[Duration]()
	sizeType      = reflect.TypeFor[Size]()
	prefixType    = reflect.TypeFor[netip.Prefix]()
	addrType      = reflect.TypeFor[netip.Addr]()
	selectionType = reflect.TypeFor[Selection]()
)

// enums lists the values a string-kinded type may take.
var enums = map[reflect.Type][]string{
	reflect.TypeFor[Role]():     {string(RoleEdge), string(RoleDNS), string(RoleGateway), string(RoleOrigin)},
	reflect.TypeFor[LinkKind](): {string(LinkDedicated), string(LinkVPN)},
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// hasParam reports a ${...} that substitution has not resolved.
func hasParam(s string) bool { return strings.Contains(s, "${") }

// resolve follows aliases, counting nodes against the budget.
func (d *decoder) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// decode stores node n into v, reporting problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.stopped {
		return
	}
	d.nodes++
	if d.nodes > maxNodes {
		d.stopped = true
		d.errorf(n, path, "document too large (more than %d values, aliases included)", maxNodes)
		return
	}
	n = d.resolve(n)
	if n == nil {
		return
	}
	d.pos[path] = pos{n.Line, n.Column}
	if isNull(n) {
		return // an empty value leaves the zero value (and the default)
	}
	t := v.Type()
	switch t {
	case durationType, sizeType, prefixType, addrType:
		d.decodeUnit(n, v, path)
		return
	case selectionType:
		d.decodeSelection(n, v, path)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.decode(n, p.Elem(), path)
		if !d.bad[path] { // a bad value stays unset rather than zero
			v.Set(p)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, path, nil)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "expected a mapping, got %s", kindName(n))
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Content)/2)
		d.eachKey(n, path, func(key string, _, val *yaml.Node) {
			e := reflect.New(t.Elem()).Elem()
			d.decode(val, e, path+"."+key)
			m.SetMapIndex(reflect.ValueOf(key).Convert(t.Key()), e)
		})
		v.Set(m)
	default:
		d.decodeScalar(n, v, path)
	}
}

// eachKey calls fn for every key of a mapping, reporting keys that are not
// strings and keys given twice (yaml.v3's Node API accepts both silently).
func (d *decoder) eachKey(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
			d.errorf(n.Content[i], path, "mapping keys must be strings")
			continue
		}
		if k.Value == "<<" {
			d.errorf(k, join(path, k.Value), "merge keys (<<) are not supported")
			continue
		}
		if seen[k.Value] {
			d.errorf(k, join(path, k.Value), "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		fn(k.Value, k, val)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

type fieldInfo struct {
	index []int
}

var structFields sync.Map // reflect.Type -> map[string]fieldInfo (+ ordered names)

type structInfo struct {
	fields map[string]fieldInfo
	names  []string
}

func fieldsOf(t reflect.Type) *structInfo {
	if v, ok := structFields.Load(t); ok {
		return v.(*structInfo)
	}
	si := &structInfo{fields: map[string]fieldInfo{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			continue // fields without a yaml tag are not user-facing
		}
		si.fields[name] = fieldInfo{index: f.Index}
		si.names = append(si.names, name)
	}
	v, _ := structFields.LoadOrStore(t, si)
	return v.(*structInfo)
}

// decodeStruct fills a struct from a mapping. extra lists keys handled by
// the caller (apiVersion and kind at the top of a document).
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, extra map[string]bool) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", kindName(n))
		return
	}
	si := fieldsOf(v.Type())
	d.eachKey(n, path, func(key string, k, val *yaml.Node) {
		if extra[key] {
			return
		}
		f, ok := si.fields[key]
		if !ok {
			msg := fmt.Sprintf("unknown key %q", key)
			if s := suggest(key, si.names); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			} else {
				msg += " (known keys: " + strings.Join(si.names, ", ") + ")"
			}
			d.errorf(k, join(path, key), "%s", msg)
			return
		}
		d.decode(val, v.FieldByIndex(f.index), join(path, key))
	})
}

func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	if d.tolerant && hasParam(n.Value) {
		return "", false
	}
	return n.Value, true
}

func (d *decoder) decodeUnit(n *yaml.Node, v reflect.Value, path string) {
	var want string
	switch v.Type() {
	case durationType:
		want = "a duration"
	case sizeType:
		want = "a size"
	case prefixType:
		want = "a CIDR prefix"
	case addrType:
		want = "an IP address"
	}
	s, ok := d.scalar(n, path, want)
	if !ok {
		return
	}
	switch v.Type() {
	case durationType:
		x, err := ParseDuration(s)
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(x))
	case sizeType:
		x, err := ParseSize(s)
		if l := strings.ToLower(s); err == nil && (x < 0 || x > 1<<60 || strings.Contains(l, "nan") || strings.Contains(l, "inf")) {
			err = fmt.Errorf("size %q out of range", s)
		}
		if err != nil {
			d.errorf(n, path, "%v", err)
			return
		}
		v.Set(reflect.ValueOf(x))
	case prefixType:
		x, err := netip.ParsePrefix(s)
		if err != nil {
			d.errorf(n, path, "invalid CIDR %q (want address/length such as 10.1.0.0/16)", s)
			return
		}
		v.Set(reflect.ValueOf(x))
	case addrType:
		x, err := netip.ParseAddr(s)
		if err != nil {
			d.errorf(n, path, "invalid IP address %q", s)
			return
		}
		v.Set(reflect.ValueOf(x))
	}
}

// decodeSelection reads none | all | [names] | {whitelist: [names]}.
func (d *decoder) decodeSelection(n *yaml.Node, v reflect.Value, path string) {
	var sel Selection
	names := func(list *yaml.Node, p string) {
		list = d.resolve(list)
		if list.Kind != yaml.SequenceNode {
			d.errorf(list, p, "expected a list of names, got %s", kindName(list))
			return
		}
		for i, c := range list.Content {
			c = d.resolve(c)
			ip := fmt.Sprintf("%s[%d]", p, i)
			d.pos[ip] = pos{c.Line, c.Column}
			if c.Kind != yaml.ScalarNode || isNull(c) || c.Value == "" {
				d.errorf(c, ip, "expected a name, got %s", kindName(c))
				continue
			}
			sel.Names = append(sel.Names, c.Value)
		}
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if d.tolerant && hasParam(n.Value) {
			return
		}
		switch n.Value {
		case "none":
		case "all":
			sel.All = true
		default:
			d.errorf(n, path, "expected none, all, a list of names or {whitelist: [names]}, got %q", n.Value)
			return
		}
	case yaml.SequenceNode:
		names(n, path)
	case yaml.MappingNode:
		d.eachKey(n, path, func(key string, k, val *yaml.Node) {
			if key != "whitelist" {
				d.errorf(k, join(path, key), "unknown key %q (want whitelist)", key)
				return
			}
			names(val, join(path, key))
		})
	default:
		d.errorf(n, path, "expected none, all, a list of names or {whitelist: [names]}")
		return
	}
	v.Set(reflect.ValueOf(sel))
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", kindName(n))
			return
		}
		if vals, ok := enums[t]; ok && !(d.tolerant && hasParam(n.Value)) {
			found := false
			for _, e := range vals {
				found = found || e == n.Value
			}
			if !found {
				d.errorf(n, path, "unknown value %q (want one of %s)", n.Value, strings.Join(vals, ", "))
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Bool:
		s, ok := d.scalar(n, path, "true or false")
		if !ok {
			return
		}
		b, err := strconv.ParseBool(s)
		if err != nil || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "expected true or false, got %q", s)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s, ok := d.scalar(n, path, "an integer")
		if !ok {
			return
		}
		i, err := strconv.ParseInt(s, 0, t.Bits())
		if err != nil || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected an integer, got %q", s)
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s, ok := d.scalar(n, path, "a non-negative integer")
		if !ok {
			return
		}
		i, err := strconv.ParseUint(s, 0, t.Bits())
		if err != nil || n.ShortTag() != "!!int" {
			d.errorf(n, path, "expected a non-negative integer below %d, got %q", uint64(1)<<t.Bits()-1, s)
			return
		}
		v.SetUint(i)
	case reflect.Float32, reflect.Float64:
		s, ok := d.scalar(n, path, "a number")
		if !ok {
			return
		}
		f, err := strconv.ParseFloat(s, t.Bits())
		tag := n.ShortTag()
		if err != nil || (tag != "!!float" && tag != "!!int") || math.IsInf(f, 0) || math.IsNaN(f) {
			d.errorf(n, path, "expected a number, got %q", s)
			return
		}
		v.SetFloat(f)
	default:
		d.errorf(n, path, "cannot decode into %s", t)
	}
}

// suggest returns the known key closest to key when it is a likely typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if strings.EqualFold(k, key) {
			return k
		}
		if dist := levenshtein(key, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
