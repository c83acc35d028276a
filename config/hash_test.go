package config

import (
	"encoding/json"
	"testing"
	"time"
)

func quickstart(t testing.TB) *Snapshot {
	t.Helper()
	b, err := Load("../examples/quickstart")
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHashStable(t *testing.T) {
	a, err := LoadFiles("../examples/quickstart/site.yaml", "../examples/quickstart/shop.yaml", "../examples/quickstart/static.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadFiles("../examples/quickstart/static.yaml", "../examples/quickstart/shop.yaml", "../examples/quickstart/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := a.Render(nil)
	sb, _ := b.Render(nil)
	if sa.Hash != sb.Hash {
		t.Errorf("file order changes the hash: %s vs %s", sa.Hash, sb.Hash)
	}

	// Through the store: JSON out and back, with revision, time and reason
	// set; and defaults filled again (idempotent).
	sa.Revision, sa.Time, sa.Reason = 7, time.Now(), "apply"
	js, err := json.Marshal(sa)
	if err != nil {
		t.Fatal(err)
	}
	var back Snapshot
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	back.SetDefaults()
	if h := Hash(&back); h != sb.Hash {
		t.Errorf("hash after a JSON round trip %s, want %s", h, sb.Hash)
	}
	if err := back.Validate(); err != nil {
		t.Errorf("round-tripped snapshot invalid: %v", err)
	}

	// nil and empty mean the same.
	c := *sb
	c.Site.Links = []Link{}
	c.Site.Store.Endpoints = []string{}
	if Hash(&c) != sb.Hash {
		t.Error("empty slices change the hash")
	}
}

func TestHashSeesChanges(t *testing.T) {
	base := quickstart(t)
	zero := 0
	edits := map[string]func(s *Snapshot){
		"active": func(s *Snapshot) {
			g := s.Distributions[0].Spec.OriginGroups["web"]
			g.Active = "green"
			s.Distributions[0].Spec.OriginGroups["web"] = g
		},
		"weight 0": func(s *Snapshot) { s.Site.Nodes[0].Weight = &zero },
		"ttl":      func(s *Snapshot) { s.Site.DNS.TTL = Duration(time.Minute) },
		"order of behaviors": func(s *Snapshot) {
			b := s.Distributions[0].Spec.Behaviors
			b[0], b[1] = b[1], b[0]
		},
	}
	for name, edit := range edits {
		s := clone(t, base)
		edit(s)
		if Hash(s) == base.Hash {
			t.Errorf("%s: hash unchanged", name)
		}
	}
}

// clone deep-copies a snapshot through JSON.
func clone(t testing.TB, s *Snapshot) *Snapshot {
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var c Snapshot
	if err := json.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}
