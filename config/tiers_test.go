package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestTiersDefaultsAndErrors(t *testing.T) {
	site, err := os.ReadFile("../examples/quickstart/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const good = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  origins: {web: {url: "http://127.0.0.1:9001"}}
  tiers: {parents: {cloud: seoul}}
  dns: {policy: latency}
  behaviors:
    - {path: "/big/*", target: web, tiers: {parents: {nodes: [tokyo-edge-1]}, mode: fastest, shard: false}}
    - {path: "*", target: web}
`
	b, err := Load(writeFiles(t, map[string]string{"site.yaml": string(site), "shop.yaml": good}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Distributions[0].Spec
	if tr := sp.Tiers; tr.Mode != TierShield || !tr.ShardOn() || tr.MaxHops != DefaultTierMaxHops {
		t.Fatalf("distribution tiers %+v", tr)
	}
	if tr := sp.Behaviors[0].Tiers; tr.Mode != TierFastest || tr.ShardOn() || tr.MaxHops != DefaultTierMaxHops {
		t.Fatalf("behavior tiers %+v", tr)
	}
	if p := sp.Paths; p == nil || !p.ChooseOn() || p.Probe.D() != time.Second || p.Margin != DefaultPathMargin || p.StaleAfter != DefaultPathStaleAfter {
		t.Fatalf("paths %+v", p)
	}
	if sp.DNS.Policy != DNSPolicyLatency {
		t.Fatalf("dns %+v", sp.DNS)
	}

	const bad = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  origins: {web: {url: "http://127.0.0.1:9001"}}
  tiers: {parents: {cloud: osaka}, mode: nearest, maxHops: 40}
  paths: {margin: 1.5, probe: 10ms}
  dns: {policy: fastest}
  behaviors:
    - {path: "/big/*", target: web, tiers: {parents: {nodes: [origin-blue, nobody]}}}
    - {path: "*", target: web, tiers: {mode: fastest}}
`
	b, err = Load(writeFiles(t, map[string]string{"site.yaml": string(site), "shop.yaml": bad}))
	if err == nil {
		_, err = b.Render(nil)
	}
	if err == nil {
		t.Fatal("bad tiers accepted")
	}
	for _, want := range []string{
		`shop.yaml:6:28: spec.tiers.parents.cloud: unknown cloud "osaka"`,
		`shop.yaml:6:42: spec.tiers.mode: unknown mode "nearest"`,
		`shop.yaml:6:60: spec.tiers.maxHops: maxHops 40 out of range`,
		`shop.yaml:7:19: spec.paths.margin: margin 1.5 out of range`,
		`shop.yaml:7:31: spec.paths.probe: probe interval 10ms is below 100ms`,
		`shop.yaml:8:17: spec.dns.policy: unknown policy "fastest"`,
		`shop.yaml:10:63: spec.behaviors[0].tiers.parents.nodes[0]: node "origin-blue" is not an edge serving this distribution`,
		`shop.yaml:10:76: spec.behaviors[0].tiers.parents.nodes[1]: unknown node "nobody"`,
		`shop.yaml:11:39: spec.behaviors[1].tiers.parents: mode fastest needs parents`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing error %q in:\n%v", want, err)
		}
	}
}
