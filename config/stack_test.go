package config

import (
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

// renderSources loads the base site and the given files (name -> text)
// and renders them.
func renderSources(t *testing.T, files map[string]string, params map[string]string) (*Snapshot, error) {
	t.Helper()
	site, err := os.ReadFile("testdata/base-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srcs := []source{{"site.yaml", site}}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		srcs = append(srcs, source{name, []byte(files[name])})
	}
	b, err := loadSources(srcs)
	if err != nil {
		return nil, err
	}
	return b.Render(params)
}

const (
	stackA = `apiVersion: intercloud/v1
kind: Stack
name: a
parameters:
  port: {default: "9001"}
outputs:
  port: {value: "${port}", type: port}
  host: 127.0.0.1
  edges: [edge-1]
`
	stackB = `apiVersion: intercloud/v1
kind: Stack
name: b
outputs:
  originUrl: {value: "http://${stack.a.outputs.host}:${stack.a.outputs.port}", type: url, description: the shared origin}
`
	distShop = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  edges: "${stack.a.outputs.edges}"
  origins:
    web: {url: "${stack.b.outputs.originUrl}/shop"}
  behaviors: [{path: "*", target: web}]
outputs:
  domain: "${distribution.domain}"
`
	distBlog = `apiVersion: intercloud/v1
kind: Distribution
name: blog
spec:
  aliases: ["blog.${stack.shop.outputs.domain}"]
  origins:
    web: {url: "http://127.0.0.1:9100"}
  behaviors: [{path: "*", target: web}]
`
	distPlain = `apiVersion: intercloud/v1
kind: Distribution
name: plain
spec:
  origins:
    web: {url: "http://127.0.0.1:9200"}
  behaviors: [{path: "*", target: web}]
`
)

// Imports resolve exporters first, whatever the file order: a chain of
// stacks, a list output, and a distribution's outputs imported by another.
func TestImportOrder(t *testing.T) {
	files := map[string]string{"1-shop.yaml": distShop, "2-b.yaml": stackB, "3-a.yaml": stackA, "0-blog.yaml": distBlog, "4-plain.yaml": distPlain}
	s, err := renderSources(t, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	shop := s.Distribution("shop")
	if got := shop.Spec.Origins["web"].URL; got != "http://127.0.0.1:9001/shop" {
		t.Errorf("shop origin %q", got)
	}
	if !slices.Equal(shop.Spec.Edges, []string{"edge-1"}) {
		t.Errorf("shop edges %v", shop.Spec.Edges)
	}
	if got := s.Distribution("blog").Spec.Aliases; !slices.Equal(got, []string{"blog.shop.cdn.example.test"}) {
		t.Errorf("blog aliases %v", got)
	}
	if got := shop.Imports["spec.origins.web.url"]; got != "${stack.b.outputs.originUrl}/shop" {
		t.Errorf("shop imports %v", shop.Imports)
	}
	if s.Distribution("plain").Imports != nil {
		t.Error("plain records imports")
	}
	if len(s.Stacks) != 2 || s.Stacks[0].Name != "a" || s.Stacks[1].Name != "b" {
		t.Fatalf("stacks %+v", s.Stacks)
	}
	if o := s.Stack("b").Outputs["originUrl"]; o.Type != OutputURL || o.Value != "http://127.0.0.1:9001" || o.Description != "the shared origin" {
		t.Errorf("b.originUrl %+v", o)
	}
	if o := s.Stack("a").Outputs["edges"]; o.Type != OutputList || !slices.Equal(o.List, []string{"edge-1"}) {
		t.Errorf("a.edges %+v", o)
	}
	// Another file order, the same snapshot.
	files2 := map[string]string{"9-shop.yaml": distShop, "8-b.yaml": stackB, "7-a.yaml": stackA, "6-blog.yaml": distBlog, "5-plain.yaml": distPlain}
	s2, err := renderSources(t, files2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Hash != s.Hash {
		t.Error("file order changes the hash")
	}
	// What the store keeps: JSON, read back, hashes and validates alike.
	var back Snapshot
	if err := json.Unmarshal(mustJSON(s), &back); err != nil {
		t.Fatal(err)
	}
	if Hash(&back) != s.Hash {
		t.Error("the hash changes through JSON")
	}
	if err := back.Validate(); err != nil {
		t.Errorf("stored form does not validate: %v", err)
	}
}

// A parameter of the first stack changes: the plan's view of it is every
// output that changed and every object it reaches, however deep, and
// nothing else.
func TestChangedOutputsReachImporters(t *testing.T) {
	files := map[string]string{"shop.yaml": distShop, "b.yaml": stackB, "a.yaml": stackA, "blog.yaml": distBlog, "plain.yaml": distPlain}
	old, err := renderSources(t, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		params  map[string]string
		edit    func(map[string]string)
		outputs []string
		reached []string
	}{
		{name: "nothing", outputs: nil, reached: nil},
		{name: "port through b to shop", params: map[string]string{"a.port": "9002"},
			outputs: []string{"a.port", "b.originUrl"}, reached: []string{"distribution shop", "stack b"}},
		{name: "list to shop only", edit: func(f map[string]string) { f["a.yaml"] = strings.Replace(stackA, "[edge-1]", "[]", 1) },
			outputs: []string{"a.edges"}, reached: []string{"distribution shop"}},
		{name: "a distribution's output to blog", edit: func(f map[string]string) {
			f["shop.yaml"] = strings.Replace(distShop, `"${distribution.domain}"`, `"www.example.test"`, 1)
		}, outputs: []string{"shop.domain"}, reached: []string{"distribution blog"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := map[string]string{}
			for k, v := range files {
				f[k] = v
			}
			if tc.edit != nil {
				tc.edit(f)
			}
			next, err := renderSources(t, f, tc.params)
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			for _, c := range Diff(old, next) {
				if n, ok := strings.CutPrefix(c.Object, "distribution "); ok {
					changed = append(changed, n)
				}
			}
			outs := ChangedOutputs(old, next, changed)
			if !slices.Equal(outs, tc.outputs) {
				t.Errorf("changed outputs %v, want %v", outs, tc.outputs)
			}
			var reached []string
			for _, r := range Importers(next, outs) {
				reached = append(reached, r.Object)
			}
			if !slices.Equal(reached, tc.reached) {
				t.Errorf("reached %v, want %v", reached, tc.reached)
			}
		})
	}
}

// An output still imported cannot be removed: the error is at the
// importer. Removing the importer too is fine.
func TestRemovedExport(t *testing.T) {
	noHost := strings.Replace(stackA, "  host: 127.0.0.1\n", "", 1)
	_, err := renderSources(t, map[string]string{"a.yaml": noHost, "b.yaml": stackB}, nil)
	var el *ErrorList
	if !errors.As(err, &el) || len(*el) != 1 {
		t.Fatalf("err %v", err)
	}
	e := (*el)[0]
	if e.File != "b.yaml" || e.Line != 5 || e.Column != 22 || !strings.Contains(e.Msg, `has no output "host"`) {
		t.Errorf("error %v", e)
	}
	if _, err := renderSources(t, map[string]string{"a.yaml": noHost}, nil); err != nil {
		t.Errorf("without its importer: %v", err)
	}
	// The same check on a stored snapshot (promote, rollback read it back).
	s, err := renderSources(t, map[string]string{"a.yaml": stackA, "b.yaml": stackB}, nil)
	if err != nil {
		t.Fatal(err)
	}
	delete(s.Stacks[0].Outputs, "host")
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `stack b: outputs.originUrl: imports ${stack.a.outputs.host}, but a has no output "host"`) {
		t.Errorf("Validate: %v", err)
	}
}

// A field set by promote or auto-heal no longer holds its import.
func TestOverrideDropsTheImport(t *testing.T) {
	d := Distribution{Imports: map[string]string{
		"spec.originGroups.web.active":     "${stack.s.outputs.a}",
		"spec.originGroups.web2.active":    "${stack.s.outputs.b}",
		"spec.originGroups.web.members[0]": "${stack.s.outputs.c}",
	}}
	d.Override("spec.originGroups.web")
	if len(d.Imports) != 1 || d.Imports["spec.originGroups.web2.active"] == "" {
		t.Errorf("imports %v", d.Imports)
	}
	d.Override("spec.originGroups.web2.active")
	if d.Imports != nil {
		t.Errorf("imports %v", d.Imports)
	}
}
