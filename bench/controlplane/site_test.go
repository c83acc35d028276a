package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/internal/storetest"
)

// zone is the site's DNS zone; distribution dNNNNN is dNNNNN.cp.test.
const zone = "cp.test."

// clouds are the fleet's four clouds; nodes are spread over them in turn.
var clouds = []struct {
	name     string
	lat, lon float64
}{{"seoul", 37.56, 126.97}, {"tokyo", 35.68, 139.69}, {"virginia", 38.9, -77.0}, {"frankfurt", 50.11, 8.68}}

// nodeSpec is one node of the benchmark's fleet.
type nodeSpec struct {
	name string
	http string // listen.http
	dns  string // listen.dns, "" for an edge-only node
}

// fleetSpec makes n edge nodes with small caches, the first dnsNodes of
// which (one per cloud) also run the DNS role.
func fleetSpec(b *testing.B, n, dnsNodes int) []nodeSpec {
	out := make([]nodeSpec, n)
	for i := range out {
		out[i] = nodeSpec{name: fmt.Sprintf("n%03d", i), http: storetest.FreeAddr(b)}
		if i < dnsNodes {
			out[i].dns = storetest.FreeAddr(b)
		}
	}
	return out
}

// siteYAML is the site: the three store members, a history of the last
// 100 revisions (keepFor 1s, so the count alone decides), every revision
// to every node at once (a site with an external store otherwise rolls
// out in stages that bake 30 s each: what is measured is propagation, not
// the bake), and the fleet.
func siteYAML(endpoints []string, nodes []nodeSpec) string {
	var s strings.Builder
	fmt.Fprintf(&s, `apiVersion: intercloud/v1
kind: Site
name: cp
store:
  endpoints: [%s]
  history: {keep: 100, keepFor: 1s}
rollout: {stages: [{percent: 100}]}
dns: {zone: %s, ttl: 30s}
clouds:
`, strings.Join(endpoints, ", "), zone)
	for i, c := range clouds {
		fmt.Fprintf(&s, "  - {name: %s, asn: %d, cidrs: [10.%d.0.0/16]}\n", c.name, 65001+i, i+1)
	}
	s.WriteString("nodes:\n")
	for i, n := range nodes {
		c := clouds[i%len(clouds)]
		roles, listen := "[edge]", fmt.Sprintf("http: %q", n.http)
		if n.dns != "" {
			roles, listen = "[edge, dns]", fmt.Sprintf("http: %q, dns: %q", n.http, n.dns)
		}
		// The access log is off: the requests the edges get here are the
		// benchmark polling for a change, not a workload to account for.
		fmt.Fprintf(&s, "  - {name: %s, cloud: %s, roles: %s, address: 127.0.0.1, location: {lat: %g, lon: %g}, listen: {%s}, cache: {memory: 4MiB}, accessLog: {path: \"off\"}}\n",
			n.name, c.name, roles, c.lat, c.lon, listen)
	}
	return s.String()
}

// distYAML is one distribution as a user writes it: two origins in a
// group with failover, three behaviors, response headers. The X-Tag line
// is the line a one-line change edits.
func distYAML(i int, origin, tag string) string {
	return fmt.Sprintf(`apiVersion: intercloud/v1
kind: Distribution
name: %s
spec:
  aliases: [www.%s.example.test]
  ttl: {default: 1h, min: 0s, max: 24h}
  origins:
    blue: {url: "%s"}
    green: {url: "%s"}
  originGroups:
    web: {members: [blue, green], active: blue, failoverOn: [502, 503, 504]}
  behaviors:
    - {path: "/api/*", target: web, cache: false, forward: {cookies: all, query: all, headers: [Authorization]}}
    - {path: "/static/*", target: web, ttl: {default: 168h}}
    - {path: "*", target: web}
  headers:
    response:
      set: {Strict-Transport-Security: "max-age=63072000", X-Tag: "%s"}
      remove: [Server]
`, distName(i), distName(i), origin, origin, tag)
}

func distName(i int) string { return fmt.Sprintf("d%05d", i) }

// writeConfig writes the site and n distribution files under dir.
func writeConfig(b *testing.B, dir string, site string, n int, origin string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	writeFile(b, filepath.Join(dir, "site.yaml"), site)
	for i := range n {
		writeDist(b, dir, i, origin, "v0")
	}
}

func writeDist(b *testing.B, dir string, i int, origin, tag string) {
	writeFile(b, filepath.Join(dir, distName(i)+".yaml"), distYAML(i, origin, tag))
}

func writeFile(b *testing.B, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		b.Fatal(err)
	}
}
