package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

const driftSite = `apiVersion: intercloud/v1
kind: Site
name: drift
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s}
dns: {zone: drift.test.}
# Checks only on demand here (the hour never passes); one heal per file,
# then the node leaves it to whoever keeps changing it.
drift: {interval: 1h, heal: [file], maxHeals: 1, window: 1h}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
  - name: o1
    cloud: c1
    roles: [origin]
    listen: {admin: %[4]s}
    origin: {root: content, listen: "%[5]s"}
`

// An operator edits a file under the origin's active version: intercloud
// drift --check (CLI → controller → node) puts it back and the heal shows
// in the log; edited again within the window, the node reports a fight
// and leaves it, and intercloud status flags the node.
func TestDriftThroughTheCLI(t *testing.T) {
	dir := t.TempDir()
	storeAddr, peerAddr, ctlAddr := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	nodeAdmin, originAddr := storetest.FreeAddr(t), storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(driftSite, storeAddr, peerAddr, ctlAddr, nodeAdmin, originAddr))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), spineDist)
	writeFile(t, filepath.Join(dir, "src/index.html"), "hello")
	mustRun(t, dir, "origin", "deploy", "--root", "content", "--from", "src", "--version", "v1", "--activate")

	start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	start(t, dir, "node", "--name", "o1", "--store", storeAddr, "--state-dir", "state")
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")

	if out := mustRun(t, dir, "drift", "-f", "cfg", "--check"); !strings.Contains(out, "no drift: o1") {
		t.Fatalf("fresh node:\n%s", out)
	}
	file := filepath.Join(dir, "content/v1/index.html")
	if err := os.WriteFile(file, []byte("defaced"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, dir, "drift", "-f", "cfg", "--check")
	if !strings.Contains(out, "v1/index.html") || !strings.Contains(out, "healed") {
		t.Fatalf("drift --check after an edit:\n%s", out)
	}
	// The node records its heals in the store beside its check.
	storetest.Eventually(t, 20*time.Second, "the heal is in the log", func() bool {
		out := mustRun(t, dir, "drift", "-f", "cfg")
		return strings.Contains(out, "Recent heals:") && strings.Contains(out, "v1/index.html  size 7")
	})
	if b, _ := os.ReadFile(file); string(b) != "hello" {
		t.Fatalf("file not restored: %q", b)
	}

	if err := os.WriteFile(file, []byte("defaced again"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := run(t, dir, "drift", "-f", "cfg", "--check")
	if code != 2 || !strings.Contains(out, "suspended") || !strings.Contains(out, "fighting with another tool") {
		t.Fatalf("drift --check in a fight: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(file); string(b) != "defaced again" {
		t.Fatalf("healed past the rate limit: %q", b)
	}
	storetest.Eventually(t, 20*time.Second, "status flags the node", func() bool {
		out, _ := run(t, dir, "status", "-f", "cfg")
		return strings.Contains(out, "drifted: 1 resource(s)")
	})
	// The node answers directly too, and the last check stays readable.
	out, code = run(t, dir, "drift", "--node", "http://"+nodeAdmin)
	if code != 2 || !strings.Contains(out, "v1/index.html") || !strings.Contains(out, "suspended") {
		t.Fatalf("drift --node: exit %d\n%s", code, out)
	}
	out, code = run(t, dir, "drift", "o1", "-f", "cfg")
	if code != 2 || !strings.Contains(out, "suspended") || strings.Count(out, "v1/index.html") != 3 {
		t.Fatalf("drift o1 (the resource, then the heal and the suspension in the log): exit %d\n%s", code, out)
	}
}
