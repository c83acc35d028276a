package agent

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/role"
	"github.com/intercloud/intercloud/status"
)

// recorder is a role that remembers what it was given: the agent's
// contract with roles is what this test checks, so the role is the
// instrument, not the subject.
type recorder struct {
	mu       sync.Mutex
	revision int64
	closed   bool
	nodes    map[string]status.NodeStatus
}

func (r *recorder) Prepare(_ context.Context, s *config.Snapshot) (role.Change, error) {
	return commitFunc(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.revision = s.Revision
	}), nil
}

// commitFunc is a Change that runs a function on Commit.
type commitFunc func()

func (f commitFunc) Commit()     { f() }
func (commitFunc) Abort()        {}
func (r *recorder) Ready() error { return nil }
func (r *recorder) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}
func (r *recorder) SetNodes(n map[string]status.NodeStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.nodes = n
}
func (r *recorder) state() (int64, bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.revision, r.closed, len(r.nodes)
}

const roleRecorder config.Role = "recorder"

func snapshotFor(rev int64, node string) *config.Snapshot {
	return &config.Snapshot{Revision: rev, Hash: strings.Repeat("ab", 16) + string(rune('0'+rev)), Time: time.Now().UTC(),
		Site: config.Site{Name: "t", Store: config.Store{LeaseTTL: config.DefaultLeaseTTL}, Nodes: []config.Node{{Name: node, Roles: []config.Role{roleRecorder}}}}}
}

func TestAgentServesLastKnownGoodWhileStoreIsDown(t *testing.T) {
	var (
		mu   sync.Mutex
		recs []*recorder
	)
	roleFactories[roleRecorder] = func(role.Options) (role.Role, error) {
		r := &recorder{}
		mu.Lock()
		recs = append(recs, r)
		mu.Unlock()
		return r, nil
	}
	t.Cleanup(func() { delete(roleFactories, roleRecorder) })
	latest := func() *recorder {
		mu.Lock()
		defer mu.Unlock()
		if len(recs) == 0 {
			return nil
		}
		return recs[len(recs)-1]
	}

	member := storetest.Start(t)
	st := storetest.Open(t, member.Endpoints())
	ctx := context.Background()
	if err := st.Commit(ctx, snapshotFor(1, "n1"), 0); err != nil {
		t.Fatal(err)
	}
	stateDir := t.TempDir()
	adminAddr := storetest.FreeAddr(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	start := func() (context.CancelFunc, chan struct{}) {
		actx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		a := New(Options{Node: "n1", Store: storetest.Open(t, member.Endpoints()), StateDir: stateDir, Logger: log, Admin: adminAddr})
		go func() { defer close(done); _ = a.Run(actx) }()
		return cancel, done
	}
	stop, done := start()
	storetest.Eventually(t, 15*time.Second, "role runs revision 1", func() bool {
		r := latest()
		if r == nil {
			return false
		}
		rev, _, nodes := r.state()
		return rev == 1 && nodes == 1 // it sees itself live
	})
	storetest.Eventually(t, 15*time.Second, "node registered at revision 1", func() bool {
		n, _ := st.Nodes(ctx)
		return n["n1"].Revision == 1 && n["n1"].Healthy
	})

	member.Close()
	storetest.Eventually(t, 30*time.Second, "readyz says the store is unreachable", func() bool {
		body, code := get(t, "http://"+adminAddr+"/readyz")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "last known good revision 1")
	})
	if rev, closed, _ := latest().state(); rev != 1 || closed {
		t.Fatalf("role while the store is down: revision %d closed %v", rev, closed)
	}

	// A restart while the store is down serves from disk at once.
	stop()
	<-done
	if _, closed, _ := latest().state(); !closed {
		t.Fatal("role not closed on agent stop")
	}
	stop, done = start()
	defer func() { stop(); <-done }()
	storetest.Eventually(t, 15*time.Second, "restarted agent serves the last known good snapshot", func() bool {
		mu.Lock()
		n := len(recs)
		mu.Unlock()
		rev, closed, _ := latest().state()
		return n == 2 && rev == 1 && !closed
	})

	// The store comes back with a newer revision: the agent catches up.
	member2 := storetest.StartConfig(t, member.Config)
	st2 := storetest.Open(t, member2.Endpoints())
	_, mod, err := st2.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st2.Commit(ctx, snapshotFor(2, "n1"), mod); err != nil {
		t.Fatal(err)
	}
	storetest.Eventually(t, 30*time.Second, "agent catches up to revision 2", func() bool {
		rev, _, _ := latest().state()
		return rev == 2
	})
	storetest.Eventually(t, 15*time.Second, "readyz ready again", func() bool {
		_, code := get(t, "http://"+adminAddr+"/readyz")
		return code == http.StatusOK
	})
}

func TestUnavailableRolesAreReportedByName(t *testing.T) {
	member := storetest.Start(t)
	st := storetest.Open(t, member.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snap := snapshotFor(1, "n1")
	snap.Site.Nodes[0].Roles = []config.Role{"no-such-role"}
	if err := st.Commit(ctx, snap, 0); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Node: "n1", Store: st, StateDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Admin: storetest.FreeAddr(t)})
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	storetest.Eventually(t, 15*time.Second, "registration names the unavailable role", func() bool {
		n, _ := st.Nodes(ctx)
		return len(n["n1"].Unavailable) == 1 && n["n1"].Unavailable[0] == "no-such-role"
	})
	cancel()
	<-done
}

func get(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}
