package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Snapshot.Validate runs the same checks on snapshots that never were
// files, naming the object instead of a position.
func TestSnapshotValidate(t *testing.T) {
	base := quickstart(t)
	if err := base.Validate(); err != nil {
		t.Fatalf("quickstart: %v", err)
	}
	tests := []struct {
		name string
		edit func(s *Snapshot)
		want []string
	}{
		{"promote to a non-member", func(s *Snapshot) {
			g := s.Distributions[0].Spec.OriginGroups["web"]
			g.Active = "purple"
			s.Distributions[0].Spec.OriginGroups["web"] = g
		}, []string{`distribution shop: spec.originGroups.web.active: "purple" is not a member of the group`}},
		{"canary weight", func(s *Snapshot) {
			g := s.Distributions[0].Spec.OriginGroups["web"]
			g.Canary = &Canary{Member: "green", Weight: 101}
			s.Distributions[0].Spec.OriginGroups["web"] = g
		}, []string{`distribution shop: spec.originGroups.web.canary.weight: weight 101 out of range 0..100`}},
		{"duplicate and bad names", func(s *Snapshot) {
			s.Distributions[1].Name = "shop"
			s.Site.Name = "Not Valid"
		}, []string{
			`distribution shop: name: duplicate distribution "shop"`,
			`site: name: invalid site name "Not Valid"`,
		}},
		{"node in no cloud, listen clash", func(s *Snapshot) {
			s.Site.Nodes[1].Cloud = "osaka"
			s.Site.Nodes[1].Listen.Admin = s.Site.Nodes[0].Listen.HTTP
		}, []string{
			`site: nodes[1].cloud: unknown cloud "osaka"`,
			`site: nodes[1].listen.admin: 127.0.0.1:8080 is already used by node seoul-edge-1 (nodes[0].listen.http)`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := clone(t, base)
			tc.edit(s)
			err := s.Validate()
			var el *ErrorList
			if !errors.As(err, &el) {
				t.Fatalf("error %T %v, want *ErrorList", err, err)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s := quickstart(t)
	d := s.Distribution("static")
	if got := d.Spec.Origins["files"].ConnectTimeout; got.D().String() != "2s" {
		t.Errorf("explicit connectTimeout overwritten: %s", got)
	}
	shop := s.Distribution("shop")
	if got := shop.Spec.Origins["blue"].ReadTimeout; got != DefaultReadTimeout {
		t.Errorf("readTimeout default %s", got)
	}
	if got := shop.Spec.Origins["blue"].Health; got.Healthy != DefaultHealthHealthy || got.Interval.D().String() != "2s" {
		t.Errorf("health defaults %+v", got)
	}
	if b := shop.Spec.Behaviors[0]; *b.Cache || b.Methods[2] != "POST" {
		t.Errorf("explicit behavior settings overwritten: %+v", b)
	}
	if b := shop.Spec.Behaviors[1]; !*b.Cache || !slices.Equal(b.Methods, DefaultMethods) || b.TTL.Min != nil {
		t.Errorf("behavior defaults %+v", b)
	}
	if e := d.Spec.ErrorPages[0]; e.TTL != DefaultErrorPageTTL || e.ResponseCode != 404 {
		t.Errorf("error page defaults %+v", e)
	}
	if n := s.Site.Node("origin-blue"); n.Cache.Memory != 0 {
		t.Errorf("cache defaults on a node without the edge role")
	}
	if s.Site.DNS.Nameservers[0] != "ns1.cdn.example.test." || s.Site.DNS.MaxAnswers != DefaultMaxAnswers {
		t.Errorf("dns defaults %+v", s.Site.DNS)
	}
	// Only max set: the default TTL is clamped into range.
	var ttl TTL
	m := Duration(3600e9)
	ttl.Max = &m
	setTTLDefaults(&ttl)
	if *ttl.Default != m || *ttl.Min != 0 {
		t.Errorf("clamped ttl %+v", ttl)
	}
	h := s.Hash
	s.SetDefaults()
	if Hash(s) != h {
		t.Error("SetDefaults is not idempotent")
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "a.yaml", Line: 3, Column: 5, Field: "spec.x", Msg: "bad"}, "a.yaml:3:5: spec.x: bad"},
		{Error{File: "site", Field: "dns.zone", Msg: "bad"}, "site: dns.zone: bad"},
		{Error{File: "a.yaml", Msg: "no Site"}, "a.yaml: no Site"},
		{Error{Msg: "bare"}, "bare"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
	l := ErrorList{&tc0, &tc1}
	if l.Error() != "b:1:1: x: one\nb:2:1: y: two" {
		t.Errorf("list: %q", l.Error())
	}
	var target *Error
	if !errors.As(error(l), &target) || target.Msg != "one" {
		t.Errorf("errors.As through ErrorList: %v", target)
	}
}

var (
	tc0 = Error{File: "b", Line: 1, Column: 1, Field: "x", Msg: "one"}
	tc1 = Error{File: "b", Line: 2, Column: 1, Field: "y", Msg: "two"}
)
