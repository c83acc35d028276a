package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/internal/storetest"
)

// The stacks example's site on free loopback ports: two edges (not
// started: plan sees them down) and the controller.
const stacksSite = `apiVersion: intercloud/v1
kind: Site
name: stacks
store: {listen: %[1]s, peer: %[2]s, dataDir: store}
controller: {admin: %[3]s}
dns: {zone: cdn.example.test.}
clouds:
  - {name: seoul, asn: 65001, cidrs: [10.1.0.0/16]}
  - {name: tokyo, asn: 65002, cidrs: [10.2.0.0/16]}
nodes:
  - {name: seoul-edge-1, cloud: seoul, roles: [edge, dns], address: 127.0.0.1, listen: {http: "%[4]s", dns: "%[5]s", admin: "%[6]s"}}
  - {name: tokyo-edge-1, cloud: tokyo, roles: [edge, dns], address: 127.0.0.2, listen: {http: "%[7]s", dns: "%[8]s", admin: "%[9]s"}}
`

// TestStacksPlanAndExport drives the CLI against a controller process: the
// stacks example applied, a plan of a changed stack output listing what it
// reaches and touches (text and JSON), an import cycle refused with its
// position, and an export of the stored revision that plans no change.
func TestStacksPlanAndExport(t *testing.T) {
	dir := t.TempDir()
	a := storetest.FreeAddr
	ctl := a(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(stacksSite, a(t), a(t), ctl, a(t), a(t), a(t), a(t), a(t), a(t)))
	for _, f := range []string{"shared.yaml", "shop.yaml", "static.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../examples/stacks", f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "cfg", f), string(b))
	}
	start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+ctl+"/readyz", 200)
	mustRun(t, dir, "apply", "-f", "cfg")

	out := mustRun(t, dir, "plan", "-f", "cfg", "--param", "shared.active=green")
	for _, want := range []string{
		"~ distribution shop\n    spec.originGroups.web.active: blue -> green",
		"~ stack shared\n    outputs.active.value: blue -> green",
		"  reaches distribution shop (imports shared.active)",
		"  re-rendered: imports shared.active, which changed\n  reapplies on 2 node(s): seoul-edge-1, tokyo-edge-1",
		"  cache unreachable: shop /api/* /static/* /*: group web switches blue -> green",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	var plan struct {
		Changed bool `json:"changed"`
		Impact  []struct {
			Object  string `json:"object"`
			Reaches []struct{ Object string }
		} `json:"impact"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "plan", "-f", "cfg", "--param", "shared.active=green", "-o", "json")), &plan); err != nil {
		t.Fatal(err)
	}
	// Each index is checked before it is read: a short answer fails the
	// test with what came back instead of panicking.
	if !plan.Changed || len(plan.Impact) != 2 || plan.Impact[1].Object != "stack shared" ||
		len(plan.Impact[1].Reaches) == 0 || plan.Impact[1].Reaches[0].Object != "distribution shop" {
		t.Errorf("plan -o json: %+v", plan)
	}

	// A cycle: shared imports the shop, which imports shared.
	shared, _ := os.ReadFile(filepath.Join(dir, "cfg/shared.yaml"))
	cyc := strings.Replace(string(shared), `healthPath: /index.html`, `healthPath: "${stack.shop.outputs.url}"`, 1)
	writeFile(t, filepath.Join(dir, "bad/shared.yaml"), cyc)
	for _, f := range []string{"site.yaml", "shop.yaml", "static.yaml"} {
		b, _ := os.ReadFile(filepath.Join(dir, "cfg", f))
		writeFile(t, filepath.Join(dir, "bad", f), string(b))
	}
	out, code := run(t, dir, "validate", "-f", "bad")
	if code == 0 || !strings.Contains(out, "bad/shared.yaml:15:15: outputs.healthPath: imports ${stack.shop.outputs.url}, which closes an import cycle: shared -> shop -> shared") {
		t.Errorf("validate of a cycle: exit %d\n%s", code, out)
	}

	out = mustRun(t, dir, "export", "-f", "cfg", "exported")
	if !strings.Contains(out, "Exported revision 1") || !strings.Contains(out, "1 stack(s), 2 distribution(s)") {
		t.Errorf("export: %s", out)
	}
	if out := mustRun(t, dir, "plan", "-f", "exported"); !strings.HasPrefix(out, "No changes: revision 1") {
		t.Errorf("plan of the export:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "exported/stacks/shared.yaml")); err != nil {
		t.Error(err)
	}
}
