package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

const opsSite = `apiVersion: intercloud/v1
kind: Site
name: ops
store: {listen: %[1]s, peer: %[2]s, dataDir: store, leaseTTL: 3s}
controller: {admin: %[3]s, driftGrace: 2s}
dns: {zone: ops.test., ttl: 5s}
health: {edgeInterval: 500ms, edgeTimeout: 400ms}
clouds:
  - {name: c1, asn: 65001, cidrs: [10.1.0.0/16]}
nodes:
%[4]s`

const opsEdge = `  - name: %[1]s
    cloud: c1
    roles: [edge]
    address: 127.0.0.1
    listen: {http: %[2]s, admin: %[3]s}
`

const opsDist = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  ttl: {default: 0s, min: 0s, max: 24h}
  origins:
    blue:  {url: "http://%[1]s", health: {path: /healthz.txt, interval: 200ms, timeout: 150ms, healthy: 1, unhealthy: 2}}
    green: {url: "http://%[2]s", health: {path: /healthz.txt, interval: 200ms, timeout: 150ms, healthy: 1, unhealthy: 2}}
  originGroups:
    web: {members: [blue, green], active: blue, failoverOn: [500, 502, 503, 504]}
  behaviors:
    - {path: "/static/*", target: web, ttl: {default: 1h}}
    - {path: "*", target: web}
`

type opsEnv struct {
	dir       string
	edges     map[string]string // name -> http address
	edgeProcs map[string]*proc
	origins   map[string]string // blue/green -> address
	originP   map[string]*proc
	ctlAddr   string
	storeAddr string
	ctl       *proc
}

// deploy writes a version of an origin's content and activates it.
func (e *opsEnv) deploy(t *testing.T, color, version string) {
	t.Helper()
	src := filepath.Join(e.dir, "src", color+"-"+version)
	writeFile(t, filepath.Join(src, "index.html"), color+" "+version+"\n")
	writeFile(t, filepath.Join(src, "healthz.txt"), "ok\n")
	writeFile(t, filepath.Join(src, "static/app.css"), "/* "+color+" "+version+" */\n")
	mustRun(t, e.dir, "origin", "deploy", "--root", filepath.Join(e.dir, color), "--from", src, "--version", version, "--activate")
}

func (e *opsEnv) startOrigin(t *testing.T, color string) {
	e.originP[color] = start(t, e.dir, "origin", "--root", filepath.Join(e.dir, color), "--listen", e.origins[color])
	waitHTTP(t, "http://"+e.origins[color]+"/healthz.txt", 200)
}

func (e *opsEnv) startEdge(t *testing.T, name string) {
	e.edgeProcs[name] = start(t, e.dir, "node", "--name", name, "--store", e.storeAddr, "--state-dir", "state/"+name)
}

// get fetches path from an edge as the shop distribution.
func get(edge, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+edge+path, nil)
	req.Host = "shop.ops.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func newOpsEnv(t *testing.T) *opsEnv {
	e := &opsEnv{dir: t.TempDir(), edges: map[string]string{}, edgeProcs: map[string]*proc{},
		origins: map[string]string{"blue": storetest.FreeAddr(t), "green": storetest.FreeAddr(t)}, originP: map[string]*proc{}}
	e.storeAddr, e.ctlAddr = storetest.FreeAddr(t), storetest.FreeAddr(t)
	peerAddr := storetest.FreeAddr(t)
	var nodes strings.Builder
	for _, name := range []string{"e1", "e2", "e3"} {
		e.edges[name] = storetest.FreeAddr(t)
		fmt.Fprintf(&nodes, opsEdge, name, e.edges[name], storetest.FreeAddr(t))
	}
	writeFile(t, filepath.Join(e.dir, "cfg/site.yaml"), fmt.Sprintf(opsSite, e.storeAddr, peerAddr, e.ctlAddr, nodes.String()))
	writeFile(t, filepath.Join(e.dir, "cfg/shop.yaml"), fmt.Sprintf(opsDist, e.origins["blue"], e.origins["green"]))
	e.deploy(t, "blue", "v1")
	e.deploy(t, "green", "v2")
	e.startOrigin(t, "blue")
	e.startOrigin(t, "green")
	e.ctl = start(t, e.dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+e.ctlAddr+"/readyz", 200)
	for name := range e.edges {
		e.startEdge(t, name)
	}
	mustRun(t, e.dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
	return e
}

// clientLoop requests / from every edge until stopped and counts what it
// saw; any failure or unexpected body is recorded.
type clientLoop struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	requests atomic.Int64
	mu       sync.Mutex
	failures []string
	bodies   map[string]int
}

// startClients polls each of paths on every edge until finished; an
// answer other than 200 with one of bodies is a failure.
func startClients(e *opsEnv, paths, bodies []string) *clientLoop {
	c := &clientLoop{stop: make(chan struct{}), bodies: map[string]int{}}
	for _, addr := range e.edges {
		for _, path := range paths {
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				for {
					select {
					case <-c.stop:
						return
					default:
					}
					code, body, err := get(addr, path)
					c.requests.Add(1)
					c.mu.Lock()
					switch {
					case err != nil:
						c.failures = append(c.failures, err.Error())
					case code != 200 || !slices.Contains(bodies, body):
						c.failures = append(c.failures, fmt.Sprintf("%s: %d %q", path, code, body))
					default:
						c.bodies[body]++
					}
					c.mu.Unlock()
					time.Sleep(5 * time.Millisecond)
				}
			}()
		}
	}
	return c
}

func (c *clientLoop) finish(t *testing.T) {
	t.Helper()
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Logf("client loop: %d requests, bodies %v", c.requests.Load(), c.bodies)
	if len(c.failures) > 0 {
		t.Errorf("%d of %d requests failed, first: %v", len(c.failures), c.requests.Load(), c.failures[:min(5, len(c.failures))])
	}
}

func (e *opsEnv) waitAllEdges(t *testing.T, path, want string) {
	t.Helper()
	for name, addr := range e.edges {
		storetest.Eventually(t, 30*time.Second, name+" serves "+want, func() bool {
			code, body, err := get(addr, path)
			return err == nil && code == 200 && body == want
		})
	}
}

// Blue/green under a continuous client load: promote, rollback, and a
// canary whose origin dies, all without a failed request.
func TestBlueGreenUnderLoad(t *testing.T) {
	e := newOpsEnv(t)
	e.waitAllEdges(t, "/index.html", "blue v1")
	clients := startClients(e, []string{"/index.html"}, []string{"blue v1", "green v2"})

	mustRun(t, e.dir, "promote", "-f", "cfg", "shop", "web", "green")
	e.waitAllEdges(t, "/index.html", "green v2")
	mustRun(t, e.dir, "rollback", "-f", "cfg")
	e.waitAllEdges(t, "/index.html", "blue v1")

	// A canary on green, then green dies: the controller stops the canary
	// by itself and every request keeps succeeding on blue.
	mustRun(t, e.dir, "promote", "-f", "cfg", "shop", "web", "green", "--weight", "50")
	mustRun(t, e.dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
	e.originP["green"].kill()
	storetest.Eventually(t, 30*time.Second, "auto-heal stops the canary", func() bool {
		out, _ := run(t, e.dir, "history", "-f", "cfg")
		return strings.Contains(out, "auto-heal shop: origin green unhealthy")
	})
	e.waitAllEdges(t, "/index.html", "blue v1")
	clients.finish(t)
	if promote, _ := run(t, e.dir, "promote", "-f", "cfg", "shop", "web", "green"); !strings.Contains(promote, "unhealthy") {
		t.Fatalf("promote to a dead origin was not refused:\n%s", promote)
	}
	// Wrong token: refused, nothing written.
	before := mustRun(t, e.dir, "history", "-f", "cfg")
	writeFile(t, filepath.Join(e.dir, "wrong-token"), "nope\n")
	if out, code := run(t, e.dir, "rollback", "-f", "cfg", "--token-file", "wrong-token"); code == 0 || !strings.Contains(out, "token") {
		t.Fatalf("rollback with a wrong token: exit %d\n%s", code, out)
	}
	if after := mustRun(t, e.dir, "history", "-f", "cfg"); after != before {
		t.Fatalf("a refused call changed history:\n%s\n%s", before, after)
	}
}

// An invalidation reaches every edge, including one that was down while
// it was issued.
func TestInvalidationReachesARestartedEdge(t *testing.T) {
	e := newOpsEnv(t)
	e.waitAllEdges(t, "/static/app.css", "/* blue v1 */")
	e.deploy(t, "blue", "v3") // the origin changes; edges still hold v1 for an hour
	for name, addr := range e.edges {
		if _, body, _ := get(addr, "/static/app.css"); body != "/* blue v1 */" {
			t.Fatalf("%s did not serve from cache: %q", name, body)
		}
	}
	if err := e.edgeProcs["e3"].stop(t); err != nil {
		t.Fatalf("stop e3: %v", err)
	}
	out := mustRun(t, e.dir, "invalidate", "-f", "cfg", "shop", "/static/*")
	if !strings.Contains(out, "2/2 edges") || !strings.Contains(out, "Completed") {
		t.Fatalf("invalidate output:\n%s", out)
	}
	e.startEdge(t, "e3")
	e.waitAllEdges(t, "/static/app.css", "/* blue v3 */")
	storetest.Eventually(t, 30*time.Second, "e3 records the invalidation too", func() bool {
		out, _ := run(t, e.dir, "invalidations", "-f", "cfg", "-j")
		return strings.Count(out, `"e3"`) >= 2 // listed among edges and done
	})
}

// A controller killed in the middle of promotes leaves a consistent store.
func TestControllerKilledDuringPromote(t *testing.T) {
	e := newOpsEnv(t)
	// Promote back and forth in the background and kill the controller
	// while it runs.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			target := []string{"green", "blue"}[i%2]
			if _, code := run(t, e.dir, "promote", "-f", "cfg", "shop", "web", target); code != 0 {
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	e.ctl.kill()
	<-done
	e.ctl = start(t, e.dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+e.ctlAddr+"/readyz", 200)
	out := mustRun(t, e.dir, "history", "-f", "cfg", "-j")
	// Revisions are contiguous and the current one converges everywhere.
	for i := 1; i <= strings.Count(out, `"revision"`); i++ {
		if !strings.Contains(out, fmt.Sprintf(`"revision": %d,`, i)) {
			t.Fatalf("revision %d missing from history:\n%s", i, out)
		}
	}
	mustRun(t, e.dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
	if _, err := os.Stat(filepath.Join(e.dir, "token")); err != nil {
		t.Fatalf("token file: %v", err)
	}
}
