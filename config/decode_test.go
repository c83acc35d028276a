package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// decodeInto decodes one YAML document into a fresh T and returns it with
// the error lines.
func decodeInto[T any](t *testing.T, src string) (T, []string) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	var v T
	var errs ErrorList
	d := newDecoder("t.yaml", &errs)
	d.decode(n.Content[0], reflect.ValueOf(&v).Elem(), "")
	var lines []string
	for _, e := range errs {
		lines = append(lines, e.Error())
	}
	return v, lines
}

func TestDecodeValues(t *testing.T) {
	zero := 0
	tru, fls := true, false
	d30 := Duration(30 * time.Second)
	d0 := Duration(0)
	tests := []struct {
		name string
		src  string
		want Behavior
		errs []string
	}{
		{"pointers keep zero apart from unset", "{path: '*', cache: false, ttl: {default: 0s, max: 30s}}",
			Behavior{Path: "*", Cache: &fls, TTL: TTL{Default: &d0, Max: &d30}}, nil},
		{"null leaves unset", "{path: '*', cache: ~, ttl: }", Behavior{Path: "*"}, nil},
		{"selection forms", "{forward: {cookies: none, query: [a, b], headers: [X]}}",
			Behavior{Forward: Forward{Query: Selection{Names: []string{"a", "b"}}, Headers: []string{"X"}}}, nil},
		{"whitelist and all", "{forward: {cookies: {whitelist: [s]}, query: all}}",
			Behavior{Forward: Forward{Cookies: Selection{Names: []string{"s"}}, Query: Selection{All: true}}}, nil},
		{"days", "{ttl: {max: 2d}, cache: true}", Behavior{Cache: &tru, TTL: TTL{Max: ptr(Duration(48 * time.Hour))}}, nil},
		{"yes is not a boolean", "{cache: yes}", Behavior{}, []string{`t.yaml:1:9: cache: expected true or false, got "yes"`}},
		{"duplicate key", "{path: a, path: b}", Behavior{Path: "a"}, []string{`t.yaml:1:11: path: duplicate key "path"`}},
		{"merge keys refused", "{<<: {path: a}}", Behavior{}, []string{`t.yaml:1:2: <<: merge keys (<<) are not supported`}},
		{"list for a string", "{target: [a]}", Behavior{}, []string{`t.yaml:1:10: target: expected a string, got a list`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, errs := decodeInto[Behavior](t, tc.src)
			if strings.Join(errs, "\n") != strings.Join(tc.errs, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tc.errs, "\n"))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}

	n, errs := decodeInto[Node](t, "{weight: 0, gateway: {routerId: 10.0.0.1, bgpPort: -1}, cache: {memory: 64MiB, maxObject: 4096}}")
	if len(errs) > 0 || n.Weight == nil || *n.Weight != zero || n.Gateway.RouterID != netip.MustParseAddr("10.0.0.1") ||
		n.Gateway.ListenPort != -1 || n.Cache.Memory != 64<<20 || n.Cache.MaxObject != 4096 {
		t.Errorf("node %+v %v", n, errs)
	}
	c, errs := decodeInto[Cloud](t, "{asn: 0xFDE9, cidrs: [10.0.0.0/8, 'fd00::/8']}")
	if len(errs) > 0 || c.ASN != 65001 || len(c.CIDRs) != 2 {
		t.Errorf("cloud %+v %v", c, errs)
	}
}

// Types are not recursive, so aliases can only multiply through a list
// inside a list element: N behaviors each pointing at M methods. The node
// budget stops that long before memory or time run out.
func TestDecodeAliasBomb(t *testing.T) {
	src := "m: &m [" + strings.Repeat("GET, ", 999) + "GET]\nbehaviors: [" +
		strings.Repeat("{path: x, methods: *m}, ", 999) + "{path: x, methods: *m}]\n"
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	var errs ErrorList
	d := newDecoder("t.yaml", &errs)
	var v Spec
	d.decodeStruct(n.Content[0], reflect.ValueOf(&v).Elem(), "", map[string]bool{"m": true})
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "document too large") {
		t.Errorf("alias bomb not stopped: %v", errs)
	}
}

func ptr[T any](v T) *T { return &v }
