package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kinds of documents.
const (
	KindSite         = "Site"
	KindDistribution = "Distribution"
	KindStack        = "Stack"
)

// Bundle is what a config directory holds: one Site and the distributions.
// Its values are decoded, parameter defaults substituted and defaults
// filled, so that commands can read e.g. Site.Controller.Admin; Render
// produces the snapshot the controller stores.
type Bundle struct {
	Site          *Site
	Distributions []Distribution
	Stacks        []Stack
	// Sources maps each object to the file it came from: "site" and
	// "distribution <name>" (the same names Change.Object uses).
	Sources map[string]string
	// Files lists every file read, in the order read.
	Files []string

	site   *document
	dists  []*document
	stacks []*document
}

// document is one YAML document of a file.
type document struct {
	file string
	kind string
	name string
	root *yaml.Node // the top mapping
	// kindNode and nameNode keep positions for errors about the document
	// as a whole.
	kindNode, nameNode *yaml.Node
}

func (d *document) object() string {
	switch d.kind {
	case KindSite:
		return "site"
	case KindStack:
		return "stack " + d.name
	}
	return "distribution " + d.name
}

// Load reads every *.yaml and *.yml file under dir, recursively and in
// sorted order. Directories whose name starts with a dot are skipped: the
// store and the agents keep their state in .intercloud/ next to the config.
// The error is an *ErrorList when the files are invalid.
func Load(dir string) (*Bundle, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != dir && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext == ".yaml" || ext == ".yml" {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("config: reading %s: %w", dir, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("config: no *.yaml or *.yml files under %s", dir)
	}
	sort.Strings(paths)
	return LoadFiles(paths...)
}

// LoadFiles reads the given files as one bundle.
func LoadFiles(paths ...string) (*Bundle, error) {
	srcs := make([]source, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		srcs = append(srcs, source{p, data})
	}
	return loadSources(srcs)
}

type source struct {
	file string
	data []byte
}

func loadSources(srcs []source) (*Bundle, error) {
	var errs ErrorList
	var docs []*document
	for _, s := range srcs {
		docs = append(docs, parseFile(s.file, s.data, &errs)...)
	}
	b := &Bundle{Sources: map[string]string{}}
	for _, s := range srcs {
		b.Files = append(b.Files, s.file)
	}
	dists := map[string]*document{}
	// Stacks and distributions share one namespace: ${stack.NAME...}
	// imports the outputs of either.
	stacks := map[string]*document{}
	for _, d := range docs {
		switch d.kind {
		case KindSite:
			if b.site != nil {
				errs = append(errs, docErr(d, d.kindNode, "kind", "a second Site (the first is in %s:%d); a bundle holds exactly one", b.site.file, b.site.kindNode.Line))
				continue
			}
			b.site = d
		case KindDistribution:
			if first, ok := dists[d.name]; ok {
				errs = append(errs, docErr(d, d.nameNode, "name", "duplicate distribution %q (also in %s:%d)", d.name, first.file, first.nameNode.Line))
				continue
			}
			if first, ok := stacks[d.name]; ok {
				errs = append(errs, docErr(d, d.nameNode, "name", "name %q is taken by stack %s:%d (stacks and distributions share one namespace)", d.name, first.file, first.nameNode.Line))
				continue
			}
			dists[d.name] = d
			b.dists = append(b.dists, d)
		case KindStack:
			first, ok := stacks[d.name]
			if !ok {
				first, ok = dists[d.name]
			}
			if ok {
				errs = append(errs, docErr(d, d.nameNode, "name", "duplicate name %q (also %s in %s:%d; stacks and distributions share one namespace)", d.name, strings.ToLower(first.kind), first.file, first.nameNode.Line))
				continue
			}
			stacks[d.name] = d
			b.stacks = append(b.stacks, d)
		}
	}
	if b.site == nil && len(errs) == 0 {
		files := make([]string, len(srcs))
		for i, s := range srcs {
			files[i] = s.file
		}
		errs = append(errs, &Error{File: strings.Join(files, ", "), Msg: "no Site document (kind: Site) found; a bundle holds exactly one"})
	}
	if b.site == nil {
		return nil, errs.err()
	}
	// Go on after header problems (the documents concerned are left out)
	// so that one run reports everything.
	snap, err := b.render(nil, true)
	if err != nil {
		var el *ErrorList
		if !errors.As(err, &el) {
			return nil, err
		}
		errs = append(errs, *el...)
	}
	if len(errs) > 0 {
		return nil, errs.err()
	}
	b.Site = &snap.Site
	b.Distributions = snap.Distributions
	b.Sources["site"] = b.site.file
	for _, d := range b.dists {
		b.Sources[d.object()] = d.file
	}
	for _, d := range b.stacks {
		b.Sources[d.object()] = d.file
	}
	b.Stacks = snap.Stacks
	return b, nil
}

func docErr(d *document, n *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{File: d.file, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseFile splits a file into documents and reads their header
// (apiVersion, kind, name).
func parseFile(file string, data []byte, errs *ErrorList) []*document {
	var docs []*document
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A syntax error ends the file: the parser cannot resync.
			e := &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Column, e.Msg = 1, m[2]
			}
			*errs = append(*errs, e)
			break
		}
		if n.Kind != yaml.DocumentNode || len(n.Content) == 0 || isNull(n.Content[0]) {
			continue // an empty document, e.g. after a trailing ---
		}
		if d := parseHeader(file, n.Content[0], errs); d != nil {
			docs = append(docs, d)
		}
	}
	return docs
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func parseHeader(file string, root *yaml.Node, errs *ErrorList) *document {
	if root.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{File: file, Line: root.Line, Column: root.Column, Msg: "a document must be a mapping with apiVersion, kind and name"})
		return nil
	}
	d := &document{file: file, root: root}
	var apiVersion *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "apiVersion":
			apiVersion = v
		case "kind":
			d.kindNode = v
		case "name":
			d.nameNode = v
		}
	}
	bad := false
	fail := func(n *yaml.Node, field, format string, args ...any) {
		if n == nil {
			n = root
		}
		*errs = append(*errs, docErr(d, n, field, format, args...))
		bad = true
	}
	switch {
	case apiVersion == nil:
		fail(nil, "apiVersion", "missing (want %s)", APIVersion)
	case apiVersion.Value != APIVersion:
		fail(apiVersion, "apiVersion", "unsupported %q (want %s)", apiVersion.Value, APIVersion)
	}
	switch {
	case d.kindNode == nil:
		fail(nil, "kind", "missing (want Site, Distribution or Stack)")
	case d.kindNode.Value != KindSite && d.kindNode.Value != KindDistribution && d.kindNode.Value != KindStack:
		fail(d.kindNode, "kind", "unknown kind %q (want Site, Distribution or Stack)", d.kindNode.Value)
	default:
		d.kind = d.kindNode.Value
	}
	switch {
	case d.nameNode == nil || d.nameNode.Kind != yaml.ScalarNode || d.nameNode.Value == "":
		fail(d.nameNode, "name", "missing")
	case !nameRE.MatchString(d.nameNode.Value):
		fail(d.nameNode, "name", "invalid name %q (want lowercase letters, digits and '-', at most 63, as in a DNS label)", d.nameNode.Value)
	default:
		d.name = d.nameNode.Value
	}
	if bad || d.kind == "" {
		return nil
	}
	return d
}
