// Package sitegen writes generated distributions for tests that need a
// large site: the scale end-to-end tests and the export round trip.
package sitegen

import (
	"fmt"
	"os"
	"path/filepath"
)

// distribution is one generated distribution: three behaviors over one
// origin group, and a response header that tells revisions apart.
const distribution = `apiVersion: intercloud/v1
kind: Distribution
name: d%04d
spec:
  origins:
    o: {url: "%s"}
  originGroups:
    web: {members: [o], active: o}
  behaviors:
    - {path: "/api/*", target: web, cache: false}
    - {path: "/static/*", target: web, ttl: {default: 1h}}
    - {path: "*", target: web}
  headers:
    response: {set: {X-Tag: "%s"}}
`

// Name is the name of the i-th generated distribution.
func Name(i int) string { return fmt.Sprintf("d%04d", i) }

// Distribution is the i-th distribution, served by origin, answering with
// X-Tag: tag.
func Distribution(i int, origin, tag string) string {
	return fmt.Sprintf(distribution, i, origin, tag)
}

// Write writes n distributions as DIR/dNNNN.yaml.
func Write(dir string, n int, origin, tag string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, Name(i)+".yaml"), []byte(Distribution(i, origin, tag)), 0o644); err != nil {
			return err
		}
	}
	return nil
}
