package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

// The standalone origin: SIGHUP rereads its config file (a broken one is
// refused and the old rules stay), SIGTERM stops it cleanly.
func TestOriginReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	addr := storetest.FreeAddr(t)
	writeFile(t, filepath.Join(dir, "src/index.html"), "hello\n")
	mustRun(t, dir, "origin", "deploy", "--root", "root", "--from", "src", "--version", "v1", "--activate")
	conf := filepath.Join(dir, "origin.yaml")
	rules := func(cc string) string {
		return fmt.Sprintf("root: root\nlisten: %s\ncacheRules:\n  - {path: \"*\", cacheControl: %q}\n", addr, cc)
	}
	writeFile(t, conf, rules("max-age=60"))
	o := start(t, dir, "origin", "--config", conf)
	cacheControl := func() string {
		resp, err := http.Get("http://" + addr + "/index.html")
		if err != nil {
			return ""
		}
		resp.Body.Close()
		return resp.Header.Get("Cache-Control")
	}
	storetest.Eventually(t, 20*time.Second, "origin serves with the first rules", func() bool { return cacheControl() == "max-age=60" })

	writeFile(t, conf, rules("no-cache"))
	if err := o.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 20*time.Second, "SIGHUP applies the new rules", func() bool { return cacheControl() == "no-cache" })

	writeFile(t, conf, rules("max-age=1")+"bogus: key\n")
	if err := o.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a reload that would wrongly apply has had its chance
	if got := cacheControl(); got != "no-cache" {
		t.Fatalf("a broken config was applied: Cache-Control %q", got)
	}
	if err := o.stop(t); err != nil {
		t.Fatalf("origin after SIGTERM: %v\n%s", err, o.out.String())
	}
}
