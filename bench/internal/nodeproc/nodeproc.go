// Package nodeproc runs our side of a side-by-side benchmark as operators
// run it: an `intercloud node` process that gets its revision from a store
// (an etcd member in the benchmark process), logging to a file as its
// peer does.
package nodeproc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/status"
	"github.com/intercloud/intercloud/store"
)

// Node is a running `intercloud node`.
type Node struct {
	Pid int
	Log string // the node's log file
}

// Start commits snap (rendered, as config does) as revision 1 of a new
// store, registers live (the other nodes of the site, as their agents
// would, so that the node sees them), and starts `intercloud node --name
// name` on it. Everything stops when the benchmark ends.
func Start(tb testing.TB, snap *config.Snapshot, name string, live ...status.NodeStatus) Node {
	dir := tb.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	member, err := store.StartMember(ctx, store.MemberConfig{DataDir: filepath.Join(dir, "store"),
		Client: FreeAddr(tb), Peer: FreeAddr(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(member.Close)
	st, err := store.Open(member.Endpoints())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	snap.SetDefaults()
	snap.Revision, snap.Hash = 1, config.Hash(snap)
	if err := st.Commit(ctx, snap, 0); err != nil {
		tb.Fatal(err)
	}
	lctx, lcancel := context.WithCancel(context.Background())
	tb.Cleanup(lcancel)
	for _, n := range live {
		st.Register(lctx, n, time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
	bin := Binary(tb)
	logPath := filepath.Join(dir, "node.log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "node", "--name", name, "--store", strings.Join(member.Endpoints(), ","),
		"--state-dir", filepath.Join(dir, "state"), "--admin", FreeAddr(tb))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		log.Close()
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			tb.Logf("intercloud node log (tail):\n%s", b[max(0, len(b)-4000):])
		}
	})
	return Node{Pid: cmd.Process.Pid, Log: logPath}
}

// FreeAddr is a loopback address whose port was free a moment ago and that
// no earlier call in this process returned, for a snapshot's listeners
// (storetest's, so that the two never hand out the same port).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return storetest.FreeAddr(tb)
}

// binDirPrefix names the directories Binary builds into; the process id
// follows it, so that a later run can tell whose directory is left over.
const binDirPrefix = "intercloud-nodeproc-"

var build struct {
	once sync.Once
	bin  string
	err  error
}

// Binary is the intercloud binary, built once per test binary (the
// benchmarks of a package share it). It lives in a directory named after
// this process, which Main removes at the end; for packages without it,
// each build first removes the directories of processes that are gone.
func Binary(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		sweepBinDirs()
		dir := filepath.Join(os.TempDir(), binDirPrefix+strconv.Itoa(os.Getpid()))
		if build.err = os.MkdirAll(dir, 0o755); build.err != nil {
			return
		}
		build.bin = filepath.Join(dir, "intercloud")
		if out, err := exec.Command("go", "build", "-o", build.bin, "github.com/intercloud/intercloud/cmd/intercloud").CombinedOutput(); err != nil {
			build.err = fmt.Errorf("build intercloud: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		tb.Fatal(build.err)
	}
	return build.bin
}

// Main runs a package's tests and benchmarks (call it from TestMain) and
// then removes the binary Binary built, rather than leaving it to the
// next run's sweep.
func Main(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}

// sweepBinDirs removes the build directories of processes no longer running.
func sweepBinDirs() {
	ents, _ := os.ReadDir(os.TempDir())
	for _, e := range ents {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), binDirPrefix))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), binDirPrefix) || err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
		}
	}
}
