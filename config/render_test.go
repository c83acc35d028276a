package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const testSite = `apiVersion: intercloud/v1
kind: Site
name: demo
dns: {zone: cdn.example.test.}
clouds: [{name: seoul, asn: 65001}]
nodes:
  - {name: edge-1, cloud: seoul, roles: [edge], listen: {http: "127.0.0.1:8080"}}
`

const testDist = `apiVersion: intercloud/v1
kind: Distribution
name: shop
parameters:
  origin: {default: "http://127.0.0.1:9001"}
  weight: {default: "10"}
  active: {}
  canary: {default: green}
spec:
  aliases: ["${distribution.name}.example.test"]
  origins:
    blue: {url: "${origin}"}
    green: &g {url: "http://127.0.0.1:9002", hostHeader: "${distribution.domain}"}
  originGroups:
    web: {members: [blue, green], active: "${active}", canary: {member: "${canary}", weight: "${weight}"}}
  behaviors:
    - {path: "/literal/$${x}", target: web}
    - {path: "*", target: web}
  headers:
    response: {set: {X-Site: "${site.name} in ${zone}"}}
outputs:
  domain: "${distribution.domain}"
  active: "${active}"
`

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRenderParameters(t *testing.T) {
	dir := writeFiles(t, map[string]string{"site.yaml": testSite, "dist/shop.yaml": testDist})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err) // active has no default: Load must still accept it
	}
	if _, err := b.Render(nil); err == nil || !strings.Contains(err.Error(), "parameters.active: has no default") {
		t.Fatalf("Render without the required parameter: %v", err)
	}
	tests := []struct {
		name       string
		params     map[string]string
		active     string
		weight     int
		originURL  string
		paramValue string
	}{
		{"defaults", map[string]string{"active": "blue"}, "blue", 10, "http://127.0.0.1:9001", "blue"},
		{"plain name", map[string]string{"active": "green", "canary": "blue", "weight": "55"}, "green", 55, "http://127.0.0.1:9001", "green"},
		{"qualified wins", map[string]string{"active": "blue", "shop.active": "green", "canary": "blue", "shop.origin": "https://127.0.0.1:9443"}, "green", 10, "https://127.0.0.1:9443", "green"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := b.Render(tc.params)
			if err != nil {
				t.Fatal(err)
			}
			d := s.Distribution("shop")
			g := d.Spec.OriginGroups["web"]
			if g.Active != tc.active || g.Canary.Weight != tc.weight {
				t.Errorf("active %q weight %d, want %q %d", g.Active, g.Canary.Weight, tc.active, tc.weight)
			}
			if u := d.Spec.Origins["blue"].URL; u != tc.originURL {
				t.Errorf("blue url %q, want %q", u, tc.originURL)
			}
			if v := d.Parameters["active"].Default; v != tc.paramValue {
				t.Errorf("recorded parameter %q, want %q", v, tc.paramValue)
			}
			if got := s.Outputs["shop"]; got["domain"] != "shop.cdn.example.test" || got["active"] != tc.active {
				t.Errorf("outputs %v", got)
			}
			if h := d.Spec.Origins["green"].HostHeader; h != "shop.cdn.example.test" {
				t.Errorf("hostHeader %q", h)
			}
			if a := d.Spec.Aliases[0]; a != "shop.example.test" {
				t.Errorf("alias %q", a)
			}
			if p := d.Spec.Behaviors[0].Path; p != "/literal/${x}" {
				t.Errorf("escaped path %q", p)
			}
			if v := d.Spec.Headers.Response.Set["X-Site"]; v != "demo in cdn.example.test" {
				t.Errorf("header %q", v)
			}
			if s.Hash == "" || s.Hash != Hash(s) {
				t.Errorf("hash not set")
			}
		})
	}
	// The bundle itself is never changed by a render.
	if a := b.Distributions[0].Spec.OriginGroups["web"].Active; a != "${active}" {
		t.Errorf("bundle changed by Render: active %q", a)
	}
	if _, err := b.Render(map[string]string{"active": "blue", "weight": "x"}); err == nil ||
		!strings.Contains(err.Error(), `spec.originGroups.web.canary.weight: expected an integer, got "x"`) {
		t.Errorf("typed parameter error: %v", err)
	}
}

func TestRenderAliasesSubstituted(t *testing.T) {
	dist := `apiVersion: intercloud/v1
kind: Distribution
name: shop
parameters: {u: {default: "http://127.0.0.1:9001"}}
spec:
  origins:
    a: &o {url: "${u}"}
    b: *o
  behaviors: [{path: "*", target: a}]
`
	dir := writeFiles(t, map[string]string{"site.yaml": testSite, "shop.yaml": dist})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(map[string]string{"u": "http://127.0.0.1:9005"})
	if err != nil {
		t.Fatal(err)
	}
	o := s.Distributions[0].Spec.Origins
	if o["a"].URL != "http://127.0.0.1:9005" || o["b"].URL != "http://127.0.0.1:9005" {
		t.Errorf("alias not substituted: %+v", o)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"site.yml":                 testSite,
		"a/b/shop.yaml":            strings.ReplaceAll(testDist, "active: {}", "active: {default: blue}"),
		".intercloud/store/x.yaml": "not: [valid",
		"notes.txt":                "ignored",
		"multi.yaml":               "---\napiVersion: intercloud/v1\nkind: Distribution\nname: blog\nspec: {origins: {o: {url: 'http://127.0.0.1:1'}}, behaviors: [{path: '*', target: o}]}\n---\n",
	})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Files) != 3 || len(b.Distributions) != 2 {
		t.Errorf("files %v, %d distributions", b.Files, len(b.Distributions))
	}
	if b.Sources["distribution shop"] != filepath.Join(dir, "a/b/shop.yaml") || b.Sources["site"] != filepath.Join(dir, "site.yml") {
		t.Errorf("sources %v", b.Sources)
	}
	if b.Site.Controller.Admin != DefaultControllerAdmin {
		t.Errorf("bundle site has no defaults: %+v", b.Site.Controller)
	}
	if _, err := Load(t.TempDir()); err == nil {
		t.Error("empty directory loaded")
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing directory loaded")
	}
	var el *ErrorList
	if _, err := LoadFiles(filepath.Join(dir, "multi.yaml")); !errors.As(err, &el) {
		t.Errorf("bundle without a site: %v", err)
	}
}

func TestNewSnapshot(t *testing.T) {
	b, err := Load("../examples/quickstart")
	if err != nil {
		t.Fatal(err)
	}
	want, err := b.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Built from Go values, the same state hashes the same.
	got, err := NewSnapshot(want.Site, want.Distributions)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != want.Hash {
		t.Errorf("NewSnapshot hash %s, Render hash %s", got.Hash, want.Hash)
	}
	bad := want.Distributions[0]
	bad.Spec.Behaviors = nil
	if _, err := NewSnapshot(want.Site, []Distribution{bad}); err == nil {
		t.Error("NewSnapshot accepted a distribution without behaviors")
	}
}

// At load time a parameter without a default may stand anywhere; the checks
// of those values wait for Render.
func TestLoadToleratesRequiredParameters(t *testing.T) {
	dist := `apiVersion: intercloud/v1
kind: Distribution
name: shop
parameters: {a: {}, u: {}, p: {}, m: {}, t: {}, w: {}, d: {}}
spec:
  aliases: ["${a}"]
  ttl: {default: "${d}"}
  origins: {web: {url: "${u}", health: {path: "${p}"}}, alt: {url: "http://127.0.0.1:2"}}
  originGroups: {g: {members: [web, alt], active: "${t}", canary: {member: alt, weight: "${w}"}}}
  behaviors:
    - {path: "${p}", target: g, methods: ["${m}"]}
    - {path: "*", target: "${t}"}
  errorPages: [{status: 404, path: "${p}"}]
`
	dir := writeFiles(t, map[string]string{"site.yaml": testSite, "shop.yaml": dist})
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"a": "x.example.test", "u": "http://127.0.0.1:1", "p": "/x", "m": "GET", "t": "web", "w": "5", "d": "1h"}
	s, err := b.Render(good)
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Distributions[0].Spec
	if sp.OriginGroups["g"].Canary.Weight != 5 || *sp.TTL.Default != Duration(time.Hour) || sp.Behaviors[0].Methods[0] != "GET" {
		t.Errorf("rendered %+v", sp)
	}
	bad := map[string]string{"a": "x y", "u": "ftp://x", "p": "x", "m": "get", "t": "nope", "w": "500", "d": "soon"}
	_, err = b.Render(bad)
	if err == nil {
		t.Fatal("bad parameters accepted")
	}
	// Every bad value is reported: alias, url, health path, behavior
	// path, method, group active, canary weight, ttl, target, error page.
	if n := strings.Count(err.Error(), "\n") + 1; n != 10 {
		t.Errorf("%d errors, want 10:\n%v", n, err)
	}
}

// Derived defaults follow what the user wrote: a default that depends on
// another field never contradicts a value the user did write, so the file
// stays valid with only that value in it.
func TestRenderDerivedDefaults(t *testing.T) {
	const site = `apiVersion: intercloud/v1
kind: Site
name: demo
dns: {zone: cdn.example.test.}
clouds: [{name: seoul, asn: 65001, cidrs: [10.1.0.0/16]}, {name: tokyo, asn: 65002, cidrs: [10.2.0.0/16]}]
%s
nodes:
  - {name: edge-1, cloud: seoul, roles: [edge], listen: {http: "127.0.0.1:8080", admin: "127.0.0.1:9180"}}
  - {name: gw-a, cloud: seoul, roles: [gateway], gateway: {routerId: 10.1.0.1%s}}
  - {name: gw-b, cloud: tokyo, roles: [gateway], gateway: {routerId: 10.2.0.1%s}}
links:
  - {name: dx, kind: dedicated, a: {node: gw-a, address: 172.31.0.1}, b: {node: gw-b, address: 172.31.0.2}%s}
`
	const dist = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  origins: {web: {url: "http://127.0.0.1:9001", health: {path: /healthz%s}}}
  behaviors: [{path: "*", target: web}]
`
	sec := func(n int) Duration { return Duration(time.Duration(n) * time.Second) }
	tests := []struct {
		name                 string
		siteHealth           string // the site's health: line
		gwA, gwB, link       string // appended inside the flow mappings
		originHealth         string
		edgeInterval, edgeTO Duration
		interval, timeout    Duration
		holdTime, keepalive  Duration
	}{
		{name: "nothing written",
			edgeInterval: DefaultEdgeInterval, edgeTO: DefaultEdgeTimeout,
			interval: DefaultHealthInterval, timeout: DefaultHealthTimeout,
			holdTime: DefaultHoldTime, keepalive: DefaultHoldTime / 3},
		{name: "short health interval caps the timeout",
			siteHealth: "health: {edgeInterval: 1s}", originHealth: ", interval: 1s",
			edgeInterval: sec(1), edgeTO: sec(1), interval: sec(1), timeout: sec(1),
			holdTime: DefaultHoldTime, keepalive: DefaultHoldTime / 3},
		{name: "long interval keeps the default timeout",
			siteHealth: "health: {edgeInterval: 1m}", originHealth: ", interval: 1m",
			edgeInterval: sec(60), edgeTO: DefaultEdgeTimeout, interval: sec(60), timeout: DefaultHealthTimeout,
			holdTime: DefaultHoldTime, keepalive: DefaultHoldTime / 3},
		{name: "written timeouts stay",
			siteHealth: "health: {edgeInterval: 1s, edgeTimeout: 500ms}", originHealth: ", interval: 3s, timeout: 3s",
			edgeInterval: sec(1), edgeTO: Duration(500 * time.Millisecond), interval: sec(3), timeout: sec(3),
			holdTime: DefaultHoldTime, keepalive: DefaultHoldTime / 3},
		{name: "link follows its gateways' hold time",
			gwA: ", holdTime: 30s", gwB: ", holdTime: 60s",
			edgeInterval: DefaultEdgeInterval, edgeTO: DefaultEdgeTimeout,
			interval: DefaultHealthInterval, timeout: DefaultHealthTimeout,
			holdTime: sec(30), keepalive: sec(10)},
		{name: "one gateway's hold time against the other's default",
			gwA:          ", holdTime: 30s",
			edgeInterval: DefaultEdgeInterval, edgeTO: DefaultEdgeTimeout,
			interval: DefaultHealthInterval, timeout: DefaultHealthTimeout,
			holdTime: DefaultHoldTime, keepalive: DefaultHoldTime / 3},
		{name: "long keepalive lengthens the hold time",
			link:         ", keepalive: 5s",
			edgeInterval: DefaultEdgeInterval, edgeTO: DefaultEdgeTimeout,
			interval: DefaultHealthInterval, timeout: DefaultHealthTimeout,
			holdTime: sec(15), keepalive: sec(5)},
		{name: "written link hold time wins over the gateways'",
			gwA: ", holdTime: 30s", gwB: ", holdTime: 30s", link: ", holdTime: 6s",
			edgeInterval: DefaultEdgeInterval, edgeTO: DefaultEdgeTimeout,
			interval: DefaultHealthInterval, timeout: DefaultHealthTimeout,
			holdTime: sec(6), keepalive: sec(2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"site.yaml": fmt.Sprintf(site, tt.siteHealth, tt.gwA, tt.gwB, tt.link),
				"shop.yaml": fmt.Sprintf(dist, tt.originHealth),
			})
			b, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			s, err := b.Render(nil)
			if err != nil {
				t.Fatal(err)
			}
			if h := s.Site.Health; h.EdgeInterval != tt.edgeInterval || h.EdgeTimeout != tt.edgeTO {
				t.Errorf("edge probes: interval %s timeout %s, want %s %s", h.EdgeInterval, h.EdgeTimeout, tt.edgeInterval, tt.edgeTO)
			}
			if h := s.Distributions[0].Spec.Origins["web"].Health; h.Interval != tt.interval || h.Timeout != tt.timeout {
				t.Errorf("origin health: interval %s timeout %s, want %s %s", h.Interval, h.Timeout, tt.interval, tt.timeout)
			}
			if l := s.Site.Links[0]; l.HoldTime != tt.holdTime || l.Keepalive != tt.keepalive {
				t.Errorf("link: holdTime %s keepalive %s, want %s %s", l.HoldTime, l.Keepalive, tt.holdTime, tt.keepalive)
			}
		})
	}
}
