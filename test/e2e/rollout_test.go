package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

const rolloutSite = `apiVersion: intercloud/v1
kind: Site
name: roll
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s, driftGrace: 1s}
dns: {zone: roll.test., ttl: 5s}
rollout:
  stages: [{canary: true}, {percent: 100}]
  bake: 5s
  applyTimeout: 20s
  canary: {nodes: [e1]}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
  - {name: e1, cloud: c1, roles: [edge], address: 127.0.0.1, listen: {http: "%[4]s", admin: "%[5]s"}}
  - {name: e2, cloud: c1, roles: [edge], address: 127.0.0.1, listen: {http: "%[6]s", admin: "%[7]s"}}
  - {name: e3, cloud: c1, roles: [edge], address: 127.0.0.1, listen: {http: "%[8]s", admin: "%[9]s"}}
`

const rolloutDist = `apiVersion: intercloud/v1
kind: Distribution
name: web
parameters:
  origin: {default: "%s"}
  tag: {default: "a"}
spec:
  origins:
    main: {url: "${origin}"}
  behaviors:
    - {path: "*", target: main, cache: false}
  headers:
    response: {set: {X-Tag: "${tag}"}}
`

// edgeLoad sends requests to every edge for the whole test and keeps, per
// edge, the tags it answered with and how many answers were 5xx.
type edgeLoad struct {
	mu   sync.Mutex
	tags map[string]map[string]bool // edge → X-Tag values seen
	errs atomic.Int64
}

func (l *edgeLoad) run(stop <-chan struct{}, name, addr string) {
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-stop:
			return
		case <-time.After(15 * time.Millisecond):
		}
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = "web.roll.test"
		resp, err := c.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			l.errs.Add(1)
		}
		l.mu.Lock()
		if l.tags[name] == nil {
			l.tags[name] = map[string]bool{}
		}
		l.tags[name][resp.Header.Get("X-Tag")] = true
		l.mu.Unlock()
	}
}

func (l *edgeLoad) seen(edge, tag string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tags[edge][tag]
}

// TestStagedRollout: three edges as separate processes, e1 the canary.
// A good revision reaches every node stage by stage; one that cannot
// apply on the canary (its new port is taken there) and one that makes
// the canary answer 5xx (its origin is broken) are stopped at stage 1 and
// rolled back everywhere, never reaching e2 or e3.
func TestStagedRollout(t *testing.T) {
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer good.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "broken", http.StatusServiceUnavailable)
	}))
	defer broken.Close()

	dir := t.TempDir()
	addr := storetest.FreeAddr
	storeAddr, peerAddr, ctlAddr := addr(t), addr(t), addr(t)
	http1, admin1, http2, admin2, http3, admin3 := addr(t), addr(t), addr(t), addr(t), addr(t), addr(t)
	site := func(e1HTTP string) string {
		return fmt.Sprintf(rolloutSite, storeAddr, peerAddr, ctlAddr, e1HTTP, admin1, http2, admin2, http3, admin3)
	}
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), site(http1))
	writeFile(t, filepath.Join(dir, "cfg/web.yaml"), fmt.Sprintf(rolloutDist, good.URL))

	start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+ctlAddr+"/readyz", 200)
	for _, n := range []string{"e1", "e2", "e3"} {
		start(t, dir, "node", "--name", n, "--store", storeAddr, "--state-dir", "state-"+n)
	}
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")

	load := &edgeLoad{tags: map[string]map[string]bool{}}
	stop := make(chan struct{})
	defer close(stop)
	edges := map[string]string{"e1": http1, "e2": http2, "e3": http3}
	for name, a := range edges {
		go load.run(stop, name, a)
	}
	storetest.Eventually(t, 20*time.Second, "every edge serves tag a", func() bool {
		return load.seen("e1", "a") && load.seen("e2", "a") && load.seen("e3", "a")
	})

	// A good revision: the canary first, the others after its bake.
	began := time.Now()
	out := mustRun(t, dir, "apply", "-f", "cfg", "--param", "tag=b", "--wait")
	tookGood := time.Since(began)
	if !strings.Contains(out, "stage 1, 1 node(s) on it (e1)") || !strings.Contains(out, "reached every node") {
		t.Fatalf("apply --wait of a good revision:\n%s", out)
	}
	storetest.Eventually(t, 10*time.Second, "every edge serves tag b", func() bool {
		return load.seen("e1", "b") && load.seen("e2", "b") && load.seen("e3", "b")
	})
	t.Logf("good revision: apply to every node in %s (bake 5s)", tookGood.Round(100*time.Millisecond))

	// A revision the canary cannot apply: its new port is taken there.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), site(held.Addr().String()))
	tookPort := expectRollback(t, dir, []string{"--param", "tag=c"}, "e1 did not apply revision")
	if load.seen("e2", "c") || load.seen("e3", "c") {
		t.Fatal("a revision that failed on the canary reached e2 or e3")
	}
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), site(http1))

	// A revision whose origin is broken: the canary's 5xx rate fails the
	// gate while it bakes.
	tookErrors := expectRollback(t, dir, []string{"--param", "tag=d", "--param", "origin=" + broken.URL}, "e1 5xx")
	if load.seen("e2", "d") || load.seen("e3", "d") {
		t.Fatal("a revision whose canary answered 5xx reached e2 or e3")
	}
	t.Logf("apply to automatic rollback: canary cannot apply %s, canary 5xx %s (bake 5s)",
		tookPort.Round(100*time.Millisecond), tookErrors.Round(100*time.Millisecond))
}

// expectRollback applies with args, expects the rollout to be rolled back
// for a reason containing why, checks that applies are frozen until an
// operator resumes, and returns the time from apply to the rollback.
func expectRollback(t *testing.T, dir string, args []string, why string) time.Duration {
	t.Helper()
	began := time.Now()
	out, code := run(t, dir, append([]string{"apply", "-f", "cfg", "--wait"}, args...)...)
	took := time.Since(began)
	if code == 0 || !strings.Contains(out, "rolled back") || !strings.Contains(out, why) {
		t.Fatalf("apply --wait of a bad revision: exit %d\n%s", code, out)
	}
	hist := mustRun(t, dir, "history", "-f", "cfg")
	if !strings.Contains(hist, "rollback: stage 1 gate failed: "+why) {
		t.Fatalf("history does not say why it rolled back:\n%s", hist)
	}
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "30s")
	// Frozen until an operator acts.
	if out, code := run(t, dir, append([]string{"apply", "-f", "cfg"}, args...)...); code == 0 || !strings.Contains(out, "frozen") {
		t.Fatalf("apply after an automatic rollback: exit %d\n%s", code, out)
	}
	var ro struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "rollout", "-f", "cfg", "resume", "-j")), &ro); err != nil || ro.State != "complete" {
		t.Fatalf("rollout resume: %v %+v", err, ro)
	}
	return took
}
