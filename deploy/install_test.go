package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// install.sh into a directory: the binary under PREFIX, the units pointing
// at it, the config directory with environment files an operator's edits
// survive a second install, the dashboard and rules beside the binary.
func TestInstallIntoDestdir(t *testing.T) {
	dest := t.TempDir()
	run := func() string {
		t.Helper()
		cmd := exec.Command("sh", "install.sh", binary)
		cmd.Env = append(os.Environ(), "DESTDIR="+dest, "PREFIX=/opt/intercloud")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	run()
	for path, mode := range map[string]os.FileMode{
		"opt/intercloud/bin/intercloud":                                    0o755,
		"etc/systemd/system/intercloud-store.service":                      0o644,
		"etc/systemd/system/intercloud-controller.service":                 0o644,
		"etc/systemd/system/intercloud-node.service":                       0o644,
		"etc/intercloud/controller.env":                                    0o644,
		"etc/intercloud/node.env":                                          0o644,
		"etc/intercloud/store.env":                                         0o644,
		"opt/intercloud/share/intercloud/grafana/intercloud-fleet.json":    0o644,
		"opt/intercloud/share/intercloud/prometheus/intercloud-alerts.yml": 0o644,
		"opt/intercloud/share/intercloud/prometheus/prometheus.yml":        0o644,
	} {
		fi, err := os.Stat(filepath.Join(dest, path))
		if err != nil {
			t.Errorf("not installed: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if fi, err := os.Stat(filepath.Join(dest, "etc/intercloud/site")); err != nil || !fi.IsDir() {
		t.Errorf("no site directory: %v", err)
	}
	for _, name := range units {
		u := parseUnit(t, filepath.Join(dest, "etc/systemd/system/intercloud-"+name+".service"))
		exec := u.one(t, "Service", "ExecStart")
		if !strings.HasPrefix(exec, "/opt/intercloud/bin/intercloud "+name+" ") {
			t.Errorf("installed %s unit runs %q", name, exec)
		}
	}
	out, err := exec.Command(filepath.Join(dest, "opt/intercloud/bin/intercloud"), "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "intercloud ") {
		t.Errorf("installed binary: version says %q, %v", out, err)
	}

	// An operator's settings stay through a reinstall.
	env := filepath.Join(dest, "etc/intercloud/node.env")
	if err := os.WriteFile(env, []byte("INTERCLOUD_NODE=seoul-edge-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run()
	if b, _ := os.ReadFile(env); string(b) != "INTERCLOUD_NODE=seoul-edge-1\n" {
		t.Errorf("reinstall replaced node.env: %q", b)
	}
}
