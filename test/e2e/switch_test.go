package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

// switchDist serves two plain static servers: "*" with a 0s default TTL
// (every request revalidates) and /static/* kept fresh for an hour.
const switchDist = `apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  ttl: {default: 0s, min: 0s, max: 24h}
  origins:
    blue:  {url: "http://%[1]s"}
    green: {url: "http://%[2]s"}
  originGroups:
    web: {members: [blue, green], active: blue}
  behaviors:
    - {path: "/static/*", target: web, ttl: {default: 1h}}
    - {path: "*", target: web}
`

// staticServer serves dir with net/http's FileServer, as a plain static
// web server would: Last-Modified from the file, no ETag.
func staticServer(t *testing.T, dir string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestSwitchIsSeenAtOnce runs a controller and two edge nodes as
// processes in front of two Last-Modified-only servers whose files share
// one mtime, and switches between them with promote and rollback, with
// and without --keep-cache. Once `status --wait` says every node runs
// the switch, the very next request on every edge gets the colour the
// switch asked for; clients polling throughout never see a failure.
func TestSwitchIsSeenAtOnce(t *testing.T) {
	dir := t.TempDir()
	mtime := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	addrs := map[string]string{}
	for _, colour := range []string{"blue", "green"} {
		root := filepath.Join(dir, "www", colour)
		for _, f := range []string{"colour.txt", "static/colour.txt"} {
			p := filepath.Join(root, f)
			writeFile(t, p, colour+"\n")
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		addrs[colour] = staticServer(t, root)
	}
	e := &opsEnv{dir: dir, edges: map[string]string{}, edgeProcs: map[string]*proc{}}
	e.storeAddr, e.ctlAddr = storetest.FreeAddr(t), storetest.FreeAddr(t)
	var nodes strings.Builder
	for _, name := range []string{"e1", "e2"} {
		e.edges[name] = storetest.FreeAddr(t)
		fmt.Fprintf(&nodes, opsEdge, name, e.edges[name], storetest.FreeAddr(t))
	}
	writeFile(t, filepath.Join(dir, "cfg/site.yaml"), fmt.Sprintf(opsSite, e.storeAddr, storetest.FreeAddr(t), e.ctlAddr, nodes.String()))
	writeFile(t, filepath.Join(dir, "cfg/shop.yaml"), fmt.Sprintf(switchDist, addrs["blue"], addrs["green"]))
	e.ctl = start(t, dir, "controller", "-f", "cfg")
	waitHTTP(t, "http://"+e.ctlAddr+"/readyz", 200)
	for name := range e.edges {
		e.startEdge(t, name)
	}
	// status --wait waits for live nodes only: first every edge serves.
	e.waitAllEdges(t, "/colour.txt", "blue")
	mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")

	// expect checks the first answer of every edge after a switch: no
	// waiting for the old colour to age out.
	expect := func(step, path, want string) {
		t.Helper()
		for name, addr := range e.edges {
			code, body, err := get(addr, path)
			if err != nil || code != 200 || body != want {
				t.Fatalf("%s: %s %s: %d %q %v, want %q", step, name, path, code, body, err, want)
			}
		}
	}
	expect("start", "/colour.txt", "blue")
	expect("start", "/static/colour.txt", "blue")
	clients := startClients(e, []string{"/colour.txt", "/static/colour.txt"}, []string{"blue", "green"})

	for _, st := range []struct {
		name    string
		args    []string
		colour  string // of /colour.txt (revalidated on every request)
		static  string // of /static/colour.txt (fresh for an hour)
		history string
	}{
		{"promote", []string{"promote", "shop", "web", "green"}, "green", "green", "promote shop/web: blue -> green"},
		{"rollback", []string{"rollback"}, "blue", "blue", "rollback"},
		// blue's fresh copy of /static stays: that is what was asked.
		{"promote --keep-cache", []string{"promote", "shop", "web", "green", "--keep-cache"}, "green", "blue", "(keep cache)"},
		// Clear /static so that green's copy is the one cached.
		{"invalidate", []string{"invalidate", "shop", "/static/*"}, "green", "green", ""},
		{"promote after keep-cache", []string{"promote", "shop", "web", "blue"}, "blue", "blue", "promote shop/web: green -> blue"},
		// Rollback re-applies the --keep-cache revision: blue's fresh
		// copy stays, as that revision asked.
		{"rollback to a keep-cache revision", []string{"rollback"}, "green", "blue", "rollback"},
		{"invalidate", []string{"invalidate", "shop", "/static/*"}, "green", "green", ""},
		{"rollback to a revision without", []string{"rollback"}, "blue", "blue", "rollback"},
	} {
		out := mustRun(t, dir, append(st.args[:1:1], append([]string{"-f", "cfg"}, st.args[1:]...)...)...)
		mustRun(t, dir, "status", "-f", "cfg", "--wait", "--timeout", "60s")
		if st.history != "" {
			if h := mustRun(t, dir, "history", "-f", "cfg"); !strings.Contains(lastLine(h), st.history) {
				t.Fatalf("%s: the last revision does not say %q:\n%s\n%s", st.name, st.history, out, h)
			}
		}
		expect(st.name, "/colour.txt", st.colour)
		expect(st.name, "/static/colour.txt", st.static)
	}
	clients.finish(t)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
