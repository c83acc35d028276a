// Package nodeproc runs our side of a side-by-side benchmark as operators
// run it: an `intercloud node` process that gets its revision from a store
// (an etcd member in the benchmark process), logging to a file as its
// peer does.
package nodeproc

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
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
	bin := filepath.Join(dir, "intercloud")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/intercloud/intercloud/cmd/intercloud").CombinedOutput(); err != nil {
		tb.Fatalf("build intercloud: %v\n%s", err, out)
	}
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

// FreeAddr is a loopback address whose port was free a moment ago, for a
// snapshot's listeners.
func FreeAddr(tb testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
