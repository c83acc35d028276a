package config

import (
	"bytes"
	"slices"
	"testing"
)

func TestDiff(t *testing.T) {
	base := quickstart(t)
	tests := []struct {
		name string
		edit func(s *Snapshot)
		want []Change
		text string
	}{
		{"same", func(*Snapshot) {}, nil, "no changes\n"},
		{"promote", func(s *Snapshot) {
			d := s.Distribution("shop")
			g := d.Spec.OriginGroups["web"]
			g.Active = "green"
			d.Spec.OriginGroups["web"] = g
		}, []Change{{Kind: Changed, Object: "distribution shop", Fields: []string{"spec.originGroups.web.active: blue -> green"}}},
			"~ distribution shop\n    spec.originGroups.web.active: blue -> green\n"},
		{"promote keeping the cache", func(s *Snapshot) {
			d := s.Distribution("shop")
			g := d.Spec.OriginGroups["web"]
			g.Active, g.KeepCache = "green", true
			d.Spec.OriginGroups["web"] = g
		}, []Change{{Kind: Changed, Object: "distribution shop", Fields: []string{
			"spec.originGroups.web.active: blue -> green",
			"spec.originGroups.web.keepCache: <none> -> true",
		}}}, ""},
		{"node added and removed by name", func(s *Snapshot) {
			n := s.Site.Nodes[0]
			n.Name, n.Address = "seoul-edge-2", "127.0.0.3"
			n.Listen = Listen{HTTP: "127.0.0.3:8080"}
			s.Site.Nodes = append([]Node{n}, s.Site.Nodes[1:]...)
		}, []Change{{Kind: Changed, Object: "site", Fields: []string{
			"nodes[seoul-edge-1]: removed",
			"nodes[seoul-edge-2]: added",
		}}}, ""},
		{"distribution removed, field emptied", func(s *Snapshot) {
			s.Distributions = s.Distributions[:1]
			s.Distributions[0].Spec.Aliases = nil
		}, []Change{
			{Kind: Changed, Object: "distribution shop", Fields: []string{"spec.aliases: removed"}},
			{Kind: Removed, Object: "distribution static"},
		}, "~ distribution shop\n    spec.aliases: removed\n- distribution static\n"},
		{"string with spaces", func(s *Snapshot) {
			s.Distributions[0].Spec.Headers.Response.Set["X-Served-By"] = "another value"
		}, []Change{{Kind: Changed, Object: "distribution shop", Fields: []string{`spec.headers.response.set.X-Served-By: "intercloud quickstart" -> "another value"`}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := clone(t, base)
			tc.edit(s)
			got := Diff(base, s)
			if !slices.EqualFunc(got, tc.want, func(a, b Change) bool {
				return a.Kind == b.Kind && a.Object == b.Object && slices.Equal(a.Fields, b.Fields)
			}) {
				t.Errorf("Diff:\n got %#v\nwant %#v", got, tc.want)
			}
			if (len(got) == 0) != (Hash(s) == base.Hash) {
				t.Errorf("Diff empty=%v but hashes equal=%v", len(got) == 0, Hash(s) == base.Hash)
			}
			if tc.text != "" {
				var buf bytes.Buffer
				FormatDiff(&buf, got)
				if buf.String() != tc.text {
					t.Errorf("FormatDiff:\n%s\nwant:\n%s", buf.String(), tc.text)
				}
			}
		})
	}
}

func TestDiffFromNothing(t *testing.T) {
	s := quickstart(t)
	got := Diff(nil, s)
	want := []Change{{Kind: Added, Object: "site"}, {Kind: Added, Object: "distribution shop"}, {Kind: Added, Object: "distribution static"}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i].Kind != want[i].Kind || got[i].Object != want[i].Object {
			t.Errorf("change %d: %v, want %v", i, got[i], want[i])
		}
	}
	var buf bytes.Buffer
	FormatDiff(&buf, got)
	if buf.String() != "+ site\n+ distribution shop\n+ distribution static\n" {
		t.Errorf("FormatDiff: %q", buf.String())
	}
	if d := Diff(s, nil); len(d) != 3 || d[0].Kind != Removed {
		t.Errorf("Diff to nothing: %v", d)
	}
}
