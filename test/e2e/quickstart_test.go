package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/test/testenv"
)

// What `make run` does: `intercloud up -f examples/quickstart`, on the
// quickstart's own loopback addresses, then Ctrl-C and a second start from
// the stored state.
func TestQuickstartUp(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	testenv.NeedTool(t, "curl", "curl")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The quickstart names its content relative to the repository root;
	// running in a temporary directory keeps .intercloud out of the checkout.
	if err := os.Symlink(filepath.Join(repo, "examples"), filepath.Join(dir, "examples")); err != nil {
		t.Fatal(err)
	}
	up := start(t, dir, "up", "-f", "examples/quickstart")
	storetest.Eventually(t, 60*time.Second, "the tour is printed", func() bool {
		return strings.Contains(up.out.String(), "Try:")
	})
	for _, want := range []string{"curl -i -H 'Host: shop.cdn.example.test' http://127.0.0.1:8080/", "dig @127.0.0.1 -p 5353", "bin/intercloud status"} {
		if !strings.Contains(up.out.String(), want) {
			t.Errorf("tour lacks %q", want)
		}
	}
	if strings.Contains(up.out.String(), "not available in this build") {
		t.Errorf("a quickstart role is missing from the build:\n%s", up.out.String())
	}
	out := mustRun(t, dir, "status", "--wait", "--timeout", "60s")
	if !strings.Contains(out, "Every live node runs the current revision") {
		t.Fatalf("status:\n%s", out)
	}
	body, err := exec.Command("curl", "-sf", "-H", "Host: shop.cdn.example.test", "http://127.0.0.1:8080/").Output()
	if err != nil || !strings.Contains(string(body), "Hello from the blue origin") {
		t.Fatalf("curl through the seoul edge: %v\n%s", err, body)
	}
	// GeoDNS: each edge's resolver address is located by dns.networks.
	for _, c := range []struct{ server, port, src, want string }{
		{"127.0.0.1", "5353", "127.0.0.1", "127.0.0.1"},
		{"127.0.0.2", "5354", "127.0.0.2", "127.0.0.2"},
	} {
		storetest.Eventually(t, 30*time.Second, "dig from "+c.src+" answers "+c.want, func() bool {
			ans, err := exec.Command("dig", "+short", "+time=2", "@"+c.server, "-p", c.port, "-b", c.src, "shop.cdn.example.test", "A").Output()
			return err == nil && strings.TrimSpace(string(ans)) == c.want
		})
	}
	// Ctrl-C stops everything; a second start keeps the stored revision.
	if err := up.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-up.done:
		if err != nil {
			t.Fatalf("up after Ctrl-C: %v\n%s", err, up.out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("up did not stop within 30s of Ctrl-C")
	}
	if _, err := os.Stat(filepath.Join(dir, ".intercloud/store")); err != nil {
		t.Fatalf("no stored state: %v", err)
	}
	up = start(t, dir, "up", "-f", "examples/quickstart")
	storetest.Eventually(t, 60*time.Second, "second start serves again", func() bool {
		return strings.Contains(up.out.String(), "Try:")
	})
	if !strings.Contains(up.out.String(), "starting from the stored revision") {
		t.Errorf("second start did not say it starts from the stored state:\n%s", up.out.String())
	}
	if hist := mustRun(t, dir, "history"); strings.Count(hist, "\n") != 2 {
		t.Errorf("a second start added a revision:\n%s", hist)
	}
	if err := up.stop(t); err != nil {
		t.Fatalf("up after SIGTERM: %v", err)
	}
}
