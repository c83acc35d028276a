package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/internal/sitegen"
)

// roundTrip exports s (as the store gives it back: through JSON) and loads
// the files again: they must validate and hash as s did, with no diff.
func roundTrip(t *testing.T, s *Snapshot) *Snapshot {
	t.Helper()
	var stored Snapshot
	if err := json.Unmarshal(mustJSON(s), &stored); err != nil {
		t.Fatal(err)
	}
	stored.Revision = 7
	dir := filepath.Join(t.TempDir(), "export")
	files, err := Export(&stored, dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + len(s.Stacks) + len(s.Distributions); len(files) != want {
		t.Errorf("%d files, want %d", len(files), want)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatalf("exported files do not load: %v", err)
	}
	back, err := b.Render(nil)
	if err != nil {
		t.Fatalf("exported files do not render: %v", err)
	}
	if back.Hash != s.Hash {
		d := Diff(s, back)
		var buf strings.Builder
		FormatDiff(&buf, d)
		t.Fatalf("hash %s after export, want %s:\n%s", back.Hash[:12], s.Hash[:12], buf.String())
	}
	return back
}

func TestExportRoundTripsEveryExample(t *testing.T) {
	cases := []struct {
		dir    string
		params map[string]string
	}{
		{"../examples/quickstart", nil},
		{"../examples/quickstart", map[string]string{"shop.active": "green"}},
		{"../examples/multicloud", nil},
		{"../examples/stacks", nil},
		{"../examples/stacks", map[string]string{"shared.active": "green"}},
	}
	for _, tc := range cases {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			b, err := Load(tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Render(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			back := roundTrip(t, s)
			// The import graph survives: what imported still imports.
			for _, d := range s.Distributions {
				if got := back.Distribution(d.Name).Imports; len(got) != len(d.Imports) {
					t.Errorf("%s imports %v after export, want %v", d.Name, got, d.Imports)
				}
			}
		})
	}
}

// Values that YAML or the renderer would read otherwise: a literal ${, an
// empty header value, strings that look like numbers or booleans, an
// import whose value is empty, a stack with an empty list.
func TestExportKeepsAwkwardValues(t *testing.T) {
	files := map[string]string{
		"stack.yaml": `apiVersion: intercloud/v1
kind: Stack
name: s
outputs:
  empty: ""
  none: []
  yes: "yes"
`,
		"shop.yaml": `apiVersion: intercloud/v1
kind: Distribution
name: shop
parameters:
  blank: {default: ""}
spec:
  origins:
    web: {url: "http://127.0.0.1:9001", hostHeader: "${stack.s.outputs.empty}"}
  behaviors: [{path: "*", target: web, cache: false, forward: {query: all, cookies: [a, b]}}]
  headers:
    response:
      set: {X-Literal: "$${not.a.reference}", X-Empty: "", X-Yes: "${stack.s.outputs.yes}", X-Num: "1.0", X-Blank: "${blank}"}
outputs:
  tmpl: "$${x}"
`,
	}
	s, err := renderSources(t, files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := s.Distribution("shop").Spec.Headers.Response.Set["X-Literal"]; v != "${not.a.reference}" {
		t.Fatalf("X-Literal %q", v)
	}
	roundTrip(t, s)
}

// A generated site of 1,000 distributions (the scale tests' generator),
// every other one taking its origin from a shared stack: the export
// round-trips, keeps the 500 imports, and a change of the stack's output
// reaches exactly those 500.
func TestExportRoundTripsAThousandDistributions(t *testing.T) {
	dir := t.TempDir()
	if err := sitegen.Write(dir, 1000, "http://127.0.0.1:9001", "a"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i += 2 {
		d := sitegen.Distribution(i, "${stack.shared.outputs.origin}", "a")
		if err := os.WriteFile(filepath.Join(dir, sitegen.Name(i)+".yaml"), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stack := "apiVersion: intercloud/v1\nkind: Stack\nname: shared\nparameters: {origin: {default: \"http://127.0.0.1:9001\"}}\noutputs: {origin: {value: \"${origin}\", type: url}}\n"
	site, err := os.ReadFile("testdata/base-site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), site, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "shared.yaml"), []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, s)
	if len(back.Distributions) != 1000 {
		t.Fatalf("%d distributions", len(back.Distributions))
	}
	next, err := b.Render(map[string]string{"shared.origin": "http://127.0.0.1:9002"})
	if err != nil {
		t.Fatal(err)
	}
	outs := ChangedOutputs(back, next, nil)
	if len(outs) != 1 || outs[0] != "shared.origin" {
		t.Fatalf("changed outputs %v", outs)
	}
	if r := Importers(next, outs); len(r) != 500 || r[0].Object != "distribution d0000" || r[499].Object != "distribution d0998" {
		t.Fatalf("%d importers", len(r))
	}
}

func TestExportRefusesAFullDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "old.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := renderSources(t, map[string]string{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Export(s, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("err %v", err)
	}
}
