package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/test/testenv"
)

const spineSite = `apiVersion: intercloud/v1
kind: Site
name: spine
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s, driftGrace: 1s}
dns: {zone: spine.test., ttl: 5s}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
  - name: n1
    cloud: c1
    roles: [dns]
    address: 127.0.0.1
    listen: {dns: %[4]s, admin: %[5]s}
`

const spineDist = `apiVersion: intercloud/v1
kind: Distribution
name: web
parameters:
  origin: {default: "http://127.0.0.1:1"}
spec:
  origins:
    main: {url: "${origin}"}
  behaviors:
    - {path: "*", target: main}
outputs:
  domain: "${distribution.domain}"
`

// soaSerial asks the node's DNS server for the zone's SOA serial, which is
// the revision the node runs.
func soaSerial(t *testing.T, dnsAddr string) string {
	host, port, _ := strings.Cut(dnsAddr, ":")
	out, err := exec.Command("dig", "+short", "+norecurse", "+time=1", "+tries=1", "@"+host, "-p", port, "spine.test.", "SOA").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return ""
	}
	return f[2]
}

// The controller and a node as separate processes: apply, idempotence,
// status --wait, history, rollback, a broken apply, the store dying under
// the node and coming back, graceful stops.
func TestControllerAndNodeProcesses(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	dir := t.TempDir()
	storeAddr, peerAddr, ctlAddr := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	dnsAddr, nodeAdmin := storetest.FreeAddr(t), storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(spineSite, storeAddr, peerAddr, ctlAddr, dnsAddr, nodeAdmin))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), spineDist)
	writeFile(t, filepath.Join(dir, "broken/site.yaml"), fmt.Sprintf(spineSite, storeAddr, peerAddr, ctlAddr, dnsAddr, nodeAdmin))
	writeFile(t, filepath.Join(dir, "broken/web.yaml"), strings.Replace(spineDist, "target: main", "target: mian", 1)+"bogus: 1\n")

	// validate reports every error with file:line:column and touches nothing.
	out, code := run(t, dir, "validate", "-f", "broken")
	if code != 1 || !strings.Contains(out, "broken/web.yaml:10:") || !strings.Contains(out, "broken/web.yaml:13:1: bogus") {
		t.Fatalf("validate broken: exit %d\n%s", code, out)
	}
	mustRun(t, dir, "validate", "-f", "cfg")

	ctl := start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	node := start(t, dir, "node", "--name", "n1", "--store", storeAddr, "--state-dir", "state")
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
	storetest.Eventually(t, 20*time.Second, "node serves revision 1", func() bool { return soaSerial(t, dnsAddr) == "1" })

	if out := mustRun(t, dir, "apply", "-f", "cfg"); !strings.Contains(out, "No changes: revision 1") {
		t.Fatalf("second apply of the same files:\n%s", out)
	}
	out = mustRun(t, dir, "plan", "-f", "cfg", "--param", "origin=http://127.0.0.1:2")
	if !strings.Contains(out, "~ distribution web") || !strings.Contains(out, "spec.origins.main.url") {
		t.Fatalf("plan:\n%s", out)
	}
	out = mustRun(t, dir, "apply", "-f", "cfg", "--param", "origin=http://127.0.0.1:2")
	if !strings.Contains(out, "Applied revision 2") || !strings.Contains(out, "web.domain = web.spine.test") {
		t.Fatalf("apply with a parameter:\n%s", out)
	}
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
	storetest.Eventually(t, 20*time.Second, "node serves revision 2", func() bool { return soaSerial(t, dnsAddr) == "2" })

	// A broken config applies nothing.
	if out, code := run(t, dir, "apply", "-f", "broken"); code == 0 {
		t.Fatalf("broken apply succeeded:\n%s", out)
	}
	if out := mustRun(t, dir, "rollback", "-f", "cfg"); !strings.Contains(out, "Applied revision 3") {
		t.Fatalf("rollback:\n%s", out)
	}
	hist := mustRun(t, dir, "history", "-f", "cfg")
	if !strings.Contains(hist, "rollback to revision 1") || strings.Count(hist, "\n") != 4 {
		t.Fatalf("history:\n%s", hist)
	}
	storetest.Eventually(t, 20*time.Second, "node serves revision 3", func() bool { return soaSerial(t, dnsAddr) == "3" })

	// The store dies with the controller: the node keeps answering from its
	// last known good snapshot and says so; it catches up when it returns.
	ctl.kill()
	storetest.Eventually(t, 30*time.Second, "node readyz reports the store down", func() bool {
		out, _ := exec.Command("curl", "-s", "http://"+nodeAdmin+"/readyz").Output()
		return strings.Contains(string(out), "last known good revision 3")
	})
	if got := soaSerial(t, dnsAddr); got != "3" {
		t.Fatalf("node stopped serving while the store is down: serial %q", got)
	}
	ctl = start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	mustRun(t, dir, "apply", "-f", "cfg", "--param", "origin=http://127.0.0.1:3")
	storetest.Eventually(t, 30*time.Second, "node catches up to revision 4", func() bool { return soaSerial(t, dnsAddr) == "4" })
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")

	// SIGHUP makes the controller re-read and apply its files.
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), strings.Replace(spineDist, "http://127.0.0.1:1", "http://127.0.0.1:5", 1))
	if err := ctl.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 30*time.Second, "SIGHUP applies the changed files as revision 5", func() bool { return soaSerial(t, dnsAddr) == "5" })

	// Graceful stops: the node's lease is revoked at once.
	if err := node.stop(t); err != nil {
		t.Fatalf("node exit: %v", err)
	}
	out = mustRun(t, dir, "status", "-f", "cfg")
	if !strings.Contains(out, "down") {
		t.Fatalf("status after the node stopped:\n%s", out)
	}
	if err := ctl.stop(t); err != nil {
		t.Fatalf("controller exit: %v", err)
	}
}

// A three-member etcd cluster of our own binary: the controller and a node
// keep working when one member is killed.
func TestThreeMemberStoreSurvivesAMemberLoss(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	dir := t.TempDir()
	members := startThreeMembers(t, dir)
	procs, storeFlag := members.procs, members.flag
	ctlAddr, dnsAddr, nodeAdmin := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(spineSite, "127.0.0.1:1", "127.0.0.1:2", ctlAddr, dnsAddr, nodeAdmin))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), spineDist)
	start(t, dir, "controller", "-f", "cfg", "--store", storeFlag)
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	start(t, dir, "node", "--name", "n1", "--store", storeFlag, "--state-dir", "state")
	storetest.Eventually(t, 60*time.Second, "node serves revision 1", func() bool { return soaSerial(t, dnsAddr) == "1" })

	procs[0].kill()
	mustRun(t, dir, "apply", "-f", "cfg", "--param", "origin=http://127.0.0.1:2")
	storetest.Eventually(t, 60*time.Second, "node serves revision 2 with a member gone", func() bool { return soaSerial(t, dnsAddr) == "2" })
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
}
