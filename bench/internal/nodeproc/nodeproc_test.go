package nodeproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/intercloud/intercloud/internal/storetest"
)

func TestMain(m *testing.M) { Main(m) }

// Ports from nodeproc and from storetest come from one record: a
// benchmark that takes some from each never gets the same one twice.
func TestFreeAddrSharedWithStoretest(t *testing.T) {
	seen := map[string]bool{}
	for i := range 400 {
		a := FreeAddr(t)
		if i%2 == 1 {
			a = storetest.FreeAddr(t)
		}
		if seen[a] {
			t.Fatalf("call %d: %s handed out twice", i, a)
		}
		seen[a] = true
	}
}

// The binary is built once per process: a second call gets the same file,
// not a rebuild.
func TestBinaryBuiltOnce(t *testing.T) {
	first := Binary(t)
	fi, err := os.Stat(first)
	if err != nil {
		t.Fatal(err)
	}
	second := Binary(t)
	fi2, err := os.Stat(second)
	if err != nil {
		t.Fatal(err)
	}
	if second != first || !os.SameFile(fi, fi2) || !fi2.ModTime().Equal(fi.ModTime()) {
		t.Fatalf("second call: %s (%v), first %s (%v)", second, fi2.ModTime(), first, fi.ModTime())
	}
	if filepath.Base(filepath.Dir(first)) != binDirPrefix+strconv.Itoa(os.Getpid()) {
		t.Fatalf("built in %s, not in this process's directory", first)
	}
}

// A build directory whose process is gone is removed; one whose process
// runs stays.
func TestSweepBinDirs(t *testing.T) {
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	running := exec.Command("sleep", "60")
	if err := running.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { running.Process.Kill(); running.Wait() })
	dir := func(pid int) string { return filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(pid)) }
	for _, pid := range []int{gone.Process.Pid, running.Process.Pid} {
		if err := os.MkdirAll(dir(pid), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir(pid)) })
	}
	sweepBinDirs()
	if _, err := os.Stat(dir(gone.Process.Pid)); !os.IsNotExist(err) {
		t.Errorf("the directory of a process that is gone stays: %v", err)
	}
	if _, err := os.Stat(dir(running.Process.Pid)); err != nil {
		t.Errorf("the directory of a running process was removed: %v", err)
	}
}
