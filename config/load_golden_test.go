package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the # want: lines of testdata/errors/*.yaml")

// TestErrors loads every testdata/errors/*.yaml (with testdata/base-site.yaml
// unless the case says "# nobase") and compares the errors, one per line,
// with the "# want: " lines at the end of the file. A "# params: a=1 b=2"
// line renders with those parameters after a clean load.
func TestErrors(t *testing.T) {
	cases, _ := filepath.Glob("testdata/errors/*.yaml")
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, path := range cases {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			var body []string
			params := map[string]string{}
			files := []string{"testdata/base-site.yaml", path}
			for _, l := range strings.Split(string(data), "\n") {
				switch {
				case strings.HasPrefix(l, "# want: "):
					want = append(want, strings.TrimPrefix(l, "# want: "))
					continue
				case strings.HasPrefix(l, "# params: "):
					for _, kv := range strings.Fields(strings.TrimPrefix(l, "# params: ")) {
						k, v, _ := strings.Cut(kv, "=")
						params[k] = v
					}
				case l == "# nobase":
					files = files[1:]
				}
				body = append(body, l)
			}
			got := loadErrors(t, files, params)
			if *update {
				for len(body) > 0 && body[len(body)-1] == "" {
					body = body[:len(body)-1]
				}
				for _, g := range got {
					body = append(body, "# want: "+g)
				}
				if err := os.WriteFile(path, []byte(strings.Join(body, "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if len(want) == 0 {
				t.Fatalf("case has no # want: lines")
			}
			if !slices.Equal(got, want) {
				t.Errorf("errors differ\n got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		})
	}
}

// loadErrors loads (and renders) files and returns the error lines with
// file names made relative to testdata/.
func loadErrors(t *testing.T, files []string, params map[string]string) []string {
	t.Helper()
	b, err := LoadFiles(files...)
	if err == nil {
		_, err = b.Render(params)
	}
	if err == nil {
		return nil
	}
	var el *ErrorList
	if !errors.As(err, &el) {
		t.Fatalf("error is %T, not *ErrorList: %v", err, err)
	}
	var out []string
	for _, e := range *el {
		if e.Line == 0 && e.Field != "" && strings.HasPrefix(e.File, "testdata/") {
			t.Errorf("error without a position: %v", e)
		}
		e2 := *e
		e2.File = strings.ReplaceAll(e2.File, "testdata/", "")
		out = append(out, e2.Error())
	}
	return out
}
