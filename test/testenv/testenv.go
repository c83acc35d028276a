// Package testenv decides what a test does when a prerequisite is missing:
// in CI (CI=true) it fails, elsewhere it skips and names what to install.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing fails the test in CI and skips it elsewhere.
func Missing(t testing.TB, what, install string) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing in CI: %s (install: %s)", what, install)
	}
	t.Skipf("skipping: %s is missing (install: %s)", what, install)
}

// NeedRoot requires uid 0 (network namespaces, TUN, kernel routes).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root privileges", "run the tests as root: sudo make test")
	}
}

// NeedTool requires an executable on PATH and returns its path. pkg is the
// Debian package that provides it.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name, "apt-get install -y --no-install-recommends "+pkg)
	}
	return p
}

// NeedFile requires a path to exist (a device such as /dev/net/tun).
func NeedFile(t testing.TB, path, install string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, path, install)
	}
}
