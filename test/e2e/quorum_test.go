package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/test/testenv"
)

// failBound is the promise: with the store's quorum lost, an
// operator's command fails within this long and says why.
const failBound = 15 * time.Second

// runWithin runs the binary with a deadline on the command; the bool says
// whether it ended by itself before the deadline.
func runWithin(t *testing.T, dir string, d time.Duration, args ...string) (string, int, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1, false
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), true
	}
	if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return string(out), 0, true
}

// A three-member cluster of our own store members loses two: every
// controller command fails fast and names the missing quorum and the
// endpoints, the API answers 503, the node keeps serving its last known
// good revision and says so; with the members back, apply works again.
func TestLostQuorumFailsFastAndNodesKeepServing(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	dir := t.TempDir()
	members := startThreeMembers(t, dir)
	procs := members.procs
	ctlAddr, dnsAddr, nodeAdmin := storetest.FreeAddr(t), storetest.FreeAddr(t), storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(spineSite, "127.0.0.1:1", "127.0.0.1:2", ctlAddr, dnsAddr, nodeAdmin))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), spineDist)
	storeFlag := members.flag
	start(t, dir, "controller", "-f", "cfg", "--store", storeFlag)
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	start(t, dir, "node", "--name", "n1", "--store", storeFlag, "--state-dir", "state")
	storetest.Eventually(t, 60*time.Second, "node serves revision 1", func() bool { return soaSerial(t, dnsAddr) == "1" })

	procs[0].kill()
	procs[1].kill()

	says := func(t *testing.T, out string) {
		t.Helper()
		if !strings.Contains(out, "store: no quorum: ") {
			t.Errorf("does not say the store has no quorum:\n%s", out)
		}
		for _, e := range strings.Split(members.flag, ",") {
			if !strings.Contains(out, e) {
				t.Errorf("does not name endpoint %s:\n%s", e, out)
			}
		}
	}
	commands := []struct {
		name string
		args []string
	}{
		{"apply", []string{"apply", "-f", "cfg", "--param", "origin=http://127.0.0.1:2"}},
		{"plan", []string{"plan", "-f", "cfg", "--param", "origin=http://127.0.0.1:2"}},
		{"rollback", []string{"rollback", "-f", "cfg"}},
		{"promote", []string{"promote", "-f", "cfg", "web", "g", "main"}},
		{"invalidate", []string{"invalidate", "-f", "cfg", "--no-wait", "web", "/x"}},
		{"status", []string{"status", "-f", "cfg"}},
		{"status --wait", []string{"status", "-f", "cfg", "--wait"}},
		{"history", []string{"history", "-f", "cfg"}},
		{"rollout", []string{"rollout", "-f", "cfg"}},
	}
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			out, code, ended := runWithin(t, dir, failBound, c.args...)
			if !ended {
				t.Fatalf("intercloud %s still running after %s:\n%s", strings.Join(c.args, " "), failBound, out)
			}
			if code == 0 {
				t.Fatalf("intercloud %s succeeded without a quorum:\n%s", strings.Join(c.args, " "), out)
			}
			says(t, out)
			t.Log(strings.TrimSpace(out))
		})
	}
	t.Run("API", func(t *testing.T) {
		resp, err := (&http.Client{Timeout: failBound}).Get("http://" + ctlAddr + "/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET /v1/status: %d %s", resp.StatusCode, body)
		}
		says(t, string(body))
	})

	// The node serves what it had, and its readyz says from where.
	if got := soaSerial(t, dnsAddr); got != "1" {
		t.Fatalf("node stopped serving revision 1 without a quorum: serial %q", got)
	}
	storetest.Eventually(t, 30*time.Second, "node readyz reports serving its last known good revision", func() bool {
		out, _ := exec.Command("curl", "-s", "http://"+nodeAdmin+"/readyz").Output()
		return strings.Contains(string(out), "serving last known good revision 1")
	})

	members.restart(0)
	members.restart(1)
	// The members elect a leader again in their own time; apply is tried
	// until it goes through, and must then do its work.
	var out string
	storetest.Eventually(t, 60*time.Second, "apply with the quorum back", func() bool {
		var code int
		out, code, _ = runWithin(t, dir, failBound, "apply", "-f", "cfg", "--param", "origin=http://127.0.0.1:2")
		return code == 0
	})
	if !strings.Contains(out, "Applied revision 2") {
		t.Fatalf("apply with the quorum back:\n%s", out)
	}
	storetest.Eventually(t, 60*time.Second, "node serves revision 2", func() bool { return soaSerial(t, dnsAddr) == "2" })
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
}
