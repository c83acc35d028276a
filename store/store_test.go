package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/status"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startMember(t *testing.T) *Member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := StartMember(ctx, MemberConfig{DataDir: t.TempDir(), Client: freeAddr(t), Peer: freeAddr(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func openStore(t *testing.T, endpoints []string) *Store {
	t.Helper()
	s, err := Open(endpoints)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func snapshot(rev int64, dists ...string) *config.Snapshot {
	s := &config.Snapshot{Revision: rev, Hash: fmt.Sprintf("h%d", rev), Time: time.Now().UTC(), Site: config.Site{Name: "t"}}
	for _, d := range dists {
		s.Distributions = append(s.Distributions, config.Distribution{Name: d})
	}
	return s
}

func TestCommitIsAtomicAndGuarded(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()

	cur, mod, err := s.Current(ctx)
	if err != nil || cur != nil || mod != 0 {
		t.Fatalf("empty store: got %v %d %v", cur, mod, err)
	}
	if err := s.Commit(ctx, snapshot(1, "a", "b"), 0); err != nil {
		t.Fatal(err)
	}
	// A second writer that read the empty store must lose.
	if err := s.Commit(ctx, snapshot(1, "c"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale commit: got %v, want ErrConflict", err)
	}
	cur, mod, err = s.Current(ctx)
	if err != nil || cur.Revision != 1 || len(cur.Distributions) != 2 {
		t.Fatalf("after commit: %+v %v", cur, err)
	}
	if err := s.Commit(ctx, snapshot(2, "b"), mod); err != nil {
		t.Fatal(err)
	}
	resp, err := s.cli.Get(ctx, keyDistributions, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range resp.Kvs {
		keys = append(keys, string(kv.Key))
	}
	if strings.Join(keys, ",") != keyDistributions+"b" {
		t.Fatalf("distribution keys after removing a: %v", keys)
	}
	hist, err := s.History(ctx)
	if err != nil || len(hist) != 2 || hist[0].Revision != 1 || hist[1].Hash != "h2" {
		t.Fatalf("history: %+v %v", hist, err)
	}
	old, err := s.Revision(ctx, 1)
	if err != nil || len(old.Distributions) != 2 {
		t.Fatalf("revision 1: %+v %v", old, err)
	}
}

func TestRegistrationDisappearsWithLease(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := s.Register(ctx, status.NodeStatus{Name: "n1", Healthy: true}, 2*time.Second, log)
	waitFor(t, func() bool {
		nodes, _ := s.Nodes(context.Background())
		return nodes["n1"].Healthy
	})
	reg.Update(func(st *status.NodeStatus) { st.Revision = 7 })
	waitFor(t, func() bool {
		nodes, _ := s.Nodes(context.Background())
		return nodes["n1"].Revision == 7
	})
	cancel()
	<-reg.Done()
	nodes, err := s.Nodes(context.Background())
	if err != nil || len(nodes) != 0 {
		t.Fatalf("after stop: %v %v", nodes, err)
	}
}

func TestInvalidationsAndHealth(t *testing.T) {
	m := startMember(t)
	s := openStore(t, m.Endpoints())
	ctx := context.Background()
	if err := s.PutInvalidation(ctx, status.Invalidation{ID: "i1", Distribution: "shop", Paths: []string{"/a"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkInvalidationDone(ctx, "i1", "edge-1"); err != nil {
		t.Fatal(err)
	}
	inv, err := s.Invalidations(ctx)
	if err != nil || inv["i1"] == nil || inv["i1"].Distribution != "shop" || len(inv["i1"].Done) != 1 {
		t.Fatalf("invalidations: %+v %v", inv, err)
	}
	if err := s.PutHealth(ctx, status.OriginHealth{Distribution: "shop", Origin: "blue", Healthy: true}); err != nil {
		t.Fatal(err)
	}
	got := make(chan map[string]status.OriginHealth, 4)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.WatchHealth(wctx, func(h map[string]status.OriginHealth) { got <- h })
	next := func() map[string]status.OriginHealth {
		select {
		case h := <-got:
			return h
		case <-time.After(15 * time.Second):
			t.Fatal("no health update within 15s")
			return nil
		}
	}
	if h := next(); !h["shop/blue"].Healthy {
		t.Fatalf("initial health: %v", h)
	}
	// Written at once after the first load, before the watch may have
	// started: the change must still arrive.
	if err := s.PutHealth(ctx, status.OriginHealth{Distribution: "shop", Origin: "blue", Healthy: false}); err != nil {
		t.Fatal(err)
	}
	for h := next(); h["shop/blue"].Healthy; h = next() {
		// a reload of the state before the change may come first
	}
}

// A three-member cluster keeps serving commits and leases when one member dies.
func TestClusterSurvivesMemberLoss(t *testing.T) {
	members := startCluster(t)
	var endpoints []string
	for _, m := range members {
		endpoints = append(endpoints, m.Endpoints()...)
	}
	s := openStore(t, endpoints)
	ctx := context.Background()
	if err := s.Commit(ctx, snapshot(1, "a"), 0); err != nil {
		t.Fatal(err)
	}
	members[0].Close()
	_, mod, err := s.Current(ctx)
	if err != nil {
		t.Fatalf("read after member loss: %v", err)
	}
	if err := s.Commit(ctx, snapshot(2, "a", "b"), mod); err != nil {
		t.Fatalf("commit after member loss: %v", err)
	}
	cur, _, err := s.Current(ctx)
	if err != nil || cur.Revision != 2 {
		t.Fatalf("current after member loss: %+v %v", cur, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 15s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
