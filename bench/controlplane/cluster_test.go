package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/store"
)

// buildBinary builds the intercloud binary into dir (the go tool's cache
// makes this quick when nothing changed).
func buildBinary(b *testing.B, dir string) string {
	bin := filepath.Join(dir, "intercloud")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/intercloud/intercloud/cmd/intercloud").CombinedOutput()
	if err != nil {
		b.Fatalf("build intercloud: %v\n%s", err, out)
	}
	return bin
}

// member is one `intercloud store` process.
type member struct {
	name, client, peer string
	cmd                *exec.Cmd
	out                *bytes.Buffer
	done               chan struct{}
}

// startCluster starts three `intercloud store` members on loopback, as
// test/e2e's TestThreeMemberStoreSurvivesAMemberLoss does, and waits until
// the cluster answers a linearizable read. Each member is its own process
// (its own WAL fsyncs, raft over TCP): the etcd a site runs at scale. The
// members die with the benchmark binary (Pdeathsig) and are stopped, and
// their data removed, when the benchmark ends.
func startCluster(b *testing.B, bin, dir string) (endpoints []string, members []*member) {
	var initial []string
	for i := range 3 {
		m := &member{name: fmt.Sprintf("m%d", i+1), client: storetest.FreeAddr(b), peer: storetest.FreeAddr(b)}
		members = append(members, m)
		initial = append(initial, m.name+"=http://"+m.peer)
		endpoints = append(endpoints, "http://"+m.client)
	}
	for _, m := range members {
		m.cmd = exec.Command(bin, "store", "--name", m.name, "--data-dir", filepath.Join(dir, m.name),
			"--listen", m.client, "--peer", m.peer, "--initial-cluster", strings.Join(initial, ","))
		m.out = &bytes.Buffer{}
		m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
		m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := m.cmd.Start(); err != nil {
			b.Fatal(err)
		}
		m.done = make(chan struct{})
		go func() { _ = m.cmd.Wait(); close(m.done) }()
		b.Cleanup(m.stop)
	}
	s, err := store.Open(endpoints)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := s.Ping(ctx)
		cancel()
		if err == nil {
			return endpoints, members
		}
		if time.Now().After(deadline) {
			for _, m := range members {
				b.Logf("%s:\n%s", m.name, m.out.String())
			}
			b.Fatalf("store cluster not serving after 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends the member: SIGTERM, then SIGKILL to its group after 10s.
func (m *member) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
		<-m.done
	}
}

// etcdClient is a plain etcd client, for what the store package does not
// expose: the members' database sizes and a raw look at the keyspace.
func etcdClient(b *testing.B, endpoints []string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	return cli
}
