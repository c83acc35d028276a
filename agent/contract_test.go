package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/storetest"
	"github.com/intercloud/intercloud/origin"
	"github.com/intercloud/intercloud/store"
	"github.com/intercloud/intercloud/test/testenv"
)

// The contract test drives a real agent, on a real etcd, through every
// transition of every role: added, changed, changed to something that
// fails to prepare, removed, added back, changed again. Each role runs
// beside a companion role, and after every step both must serve the same
// revision: a node is never half on a revision.

// siteTmpl is a one-node site; each revision renders it with its own
// figures, which every role shows where a client can see them: the edge
// in a response header, DNS as the SOA serial, the origin in Cache-Control.
var siteTmpl = template.Must(template.New("site").Parse(`apiVersion: intercloud/v1
kind: Site
name: contract
store: {leaseTTL: 5s}
dns: {zone: cdn.example.test.}
{{- if .Drift}}
drift: {{.Drift}}
{{- end}}
clouds: [{name: c1, asn: 65001, cidrs: [10.1.0.0/16]}]
nodes:
  - name: n1
    cloud: c1
    roles: [{{.Roles}}]
    address: 127.0.0.1
    location: {country: KR, lat: 37.5, lon: 127}
    listen: {http: "{{.HTTP}}", dns: "{{.DNS}}"{{if .CertFile}}, https: "{{.HTTPS}}"{{end}}}
{{- if .Gateway}}
    gateway: {routerId: 10.255.0.1, bgpPort: {{.BGPPort}}, table: 201, protocol: 211}
{{- end}}
{{- if .Origin}}
    origin:
      root: {{.Root}}
      listen: "{{.OriginListen}}"
{{- if .TokenFile}}
      tokenFile: {{.TokenFile}}
{{- end}}
      cacheRules: [{path: "*", cacheControl: "max-age={{.Rev}}"}]
{{- end}}
---
apiVersion: intercloud/v1
kind: Distribution
name: shop
spec:
  origins: {o: {url: "{{.Upstream}}"}}
  behaviors: [{path: "*", target: o, cache: false}]
  headers: {response: {set: {X-Rev: "{{.Rev}}", X-Mark: "{{.Mark}}"}}}
{{- if .CertFile}}
  tls: {certFile: {{.CertFile}}, keyFile: {{.CertFile}}}
{{- end}}
`))

type siteParams struct {
	Rev                       int64
	Roles                     string
	HTTP, DNS, OriginListen   string
	Origin, Gateway           bool
	BGPPort                   int
	Root, TokenFile, Upstream string
	Mark                      string // tells apart two stores' revisions of the same number
	CertFile, HTTPS           string
	Drift                     string // the site's drift policy, as a YAML flow mapping
}

// roleProbe asks a role which revision it serves (0: not serving).
type roleProbe func(t *testing.T, p siteParams) int64

func probeEdge(t *testing.T, p siteParams) int64 {
	req, _ := http.NewRequest("GET", "http://"+p.HTTP+"/", nil)
	req.Host = "shop.cdn.example.test"
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	n, _ := strconv.ParseInt(resp.Header.Get("X-Rev"), 10, 64)
	return n
}

func probeDNS(t *testing.T, p siteParams) int64 {
	m := new(mdns.Msg)
	m.SetQuestion("cdn.example.test.", mdns.TypeSOA)
	c := &mdns.Client{Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, p.DNS)
	if err != nil || len(r.Answer) == 0 {
		return 0
	}
	if soa, ok := r.Answer[0].(*mdns.SOA); ok {
		return int64(soa.Serial)
	}
	return 0
}

func probeOrigin(t *testing.T, p siteParams) int64 {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + p.OriginListen + "/index.html")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	n, _ := strconv.ParseInt(strings.TrimPrefix(resp.Header.Get("Cache-Control"), "max-age="), 10, 64)
	return n
}

// contractCase is one role put through the transitions.
type contractCase struct {
	role      config.Role
	companion config.Role
	probe     roleProbe
	metric    string // a metric family only this role exposes
	route     string // an admin route only this role serves ("" none)
	ports     func(p siteParams) []string
	// breaks change p so that the role's Prepare fails, each in its own
	// way, and return what the error must name.
	breaks  []func(t *testing.T, p *siteParams) (what string)
	root    bool // the role needs root (kernel routes)
	newPort bool // every change moves the role to a new port (its probe)
}

// probeGateway: every revision of the gateway case listens for BGP on a
// port of its own, so the revision that runs is the one whose port is open.
func probeGateway(t *testing.T, p siteParams) int64 {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.BGPPort), 2*time.Second)
	if err != nil {
		return 0
	}
	c.Close()
	return p.Rev
}

var probes = map[config.Role]roleProbe{config.RoleEdge: probeEdge, config.RoleDNS: probeDNS,
	config.RoleOrigin: probeOrigin, config.RoleGateway: probeGateway}

func TestRoleContract(t *testing.T) {
	cases := []contractCase{
		{
			role: config.RoleEdge, companion: config.RoleDNS, metric: "intercloud_edge_", route: "/v1/edge/cache",
			ports: func(p siteParams) []string { return []string{p.HTTP} },
			breaks: breaks(
				func(t *testing.T, p *siteParams) string {
					p.HTTP = holdPort(t)
					return "address already in use"
				},
				func(t *testing.T, p *siteParams) string {
					p.CertFile, p.HTTPS = filepath.Join(t.TempDir(), "garbage.pem"), storetest.FreeAddr(t)
					os.WriteFile(p.CertFile, []byte("not a certificate"), 0o600)
					return "garbage.pem"
				}),
		},
		{
			role: config.RoleDNS, companion: config.RoleEdge, metric: "intercloud_dns_",
			ports: func(p siteParams) []string { return []string{p.DNS} },
			breaks: breaks(func(t *testing.T, p *siteParams) string {
				p.DNS = holdPort(t)
				return "address already in use"
			}),
		},
		{
			role: config.RoleOrigin, companion: config.RoleDNS, metric: "intercloud_origin_", route: "/v1/origin/versions",
			ports: func(p siteParams) []string { return []string{p.OriginListen} },
			breaks: breaks(func(t *testing.T, p *siteParams) string {
				p.TokenFile = filepath.Join(t.TempDir(), "missing-token")
				return "missing-token"
			}),
		},
		{
			// No links: nothing is learned or installed, and the kernel
			// table and protocol are the test's own.
			role: config.RoleGateway, companion: config.RoleDNS, metric: "intercloud_bgp_", route: "/v1/bgp/neighbors",
			root: true, newPort: true,
			ports: func(p siteParams) []string { return []string{fmt.Sprintf("127.0.0.1:%d", p.BGPPort)} },
			breaks: breaks(func(t *testing.T, p *siteParams) string {
				_, port, _ := net.SplitHostPort(holdPort(t))
				p.BGPPort, _ = strconv.Atoi(port)
				return "in use"
			}),
		},
	}
	for _, c := range cases {
		t.Run(string(c.role), func(t *testing.T) {
			if c.root {
				testenv.NeedRoot(t)
			}
			runContract(t, c)
		})
	}
}

func runContract(t *testing.T, c contractCase) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	root, st, adminAddr := startOriginNode(t)
	ctx := t.Context()

	base := siteParams{HTTP: storetest.FreeAddr(t), DNS: storetest.FreeAddr(t), OriginListen: storetest.FreeAddr(t),
		Root: root, Upstream: upstream.URL}
	var rev int64
	push := func(p siteParams, roles ...config.Role) siteParams {
		t.Helper()
		rev++
		p.Rev = rev
		if c.newPort && p.BGPPort == 0 {
			_, port, _ := net.SplitHostPort(storetest.FreeAddr(t))
			p.BGPPort, _ = strconv.Atoi(port)
		}
		var names []string
		p.Origin, p.Gateway = false, false
		for _, r := range roles {
			names = append(names, string(r))
			p.Origin = p.Origin || r == config.RoleOrigin
			p.Gateway = p.Gateway || r == config.RoleGateway
		}
		p.Roles = strings.Join(names, ", ")
		commitSite(t, st, p)
		return p
	}
	// serving waits until every role named serves want and the node
	// reports it.
	serving := func(p siteParams, want int64, roles ...config.Role) {
		t.Helper()
		storetest.Eventually(t, 20*time.Second, fmt.Sprintf("%v serve revision %d", roles, want), func() bool {
			for _, r := range roles {
				if probes[r](t, p) != want {
					return false
				}
			}
			n, _ := st.Nodes(ctx)
			return n["n1"].Revision == want
		})
	}
	both := []config.Role{c.role, c.companion}

	// Added.
	p := push(base, both...)
	serving(p, p.Rev, both...)
	assertExposed(t, adminAddr, c, true)

	// Changed.
	p.BGPPort = 0
	p = push(p, both...)
	serving(p, p.Rev, both...)
	good := p

	// Changed to something that fails to prepare: nothing moves, and
	// status and /readyz say why.
	for _, breakIt := range c.breaks {
		bad := good
		why := breakIt(t, &bad)
		bad = push(bad, both...)
		storetest.Eventually(t, 20*time.Second, "status names the failed revision", func() bool {
			n, _ := st.Nodes(ctx)
			return strings.Contains(n["n1"].Message, fmt.Sprintf("revision %d not applied", bad.Rev)) && strings.Contains(n["n1"].Message, why)
		})
		if body, code := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, why) {
			t.Fatalf("readyz after a failed revision: %d %q", code, body)
		}
		for _, r := range both {
			if got := probes[r](t, good); got != good.Rev {
				t.Fatalf("%s serves revision %d after revision %d failed; want %d as a whole", r, got, bad.Rev, good.Rev)
			}
		}
	}

	// Removed: its ports, metrics and routes are gone once the node is
	// on the revision.
	p = push(good, c.companion)
	serving(p, p.Rev, c.companion)
	for _, addr := range c.ports(good) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("%s still holds %s after removal: %v", c.role, addr, err)
		}
		ln.Close()
	}
	assertExposed(t, adminAddr, c, false)

	// Added back on the same ports, then changed again.
	p = push(good, both...)
	serving(p, p.Rev, both...)
	assertExposed(t, adminAddr, c, true)
	p.BGPPort = 0
	p = push(p, both...)
	serving(p, p.Rev, both...)
	if body, code := get(t, "http://"+adminAddr+"/readyz"); code != http.StatusOK {
		t.Fatalf("readyz at the end: %d %q", code, body)
	}
}

// commitSite renders p through config loading, as apply does, and commits
// it as the next revision.
func commitSite(t *testing.T, st *store.Store, p siteParams) {
	t.Helper()
	var b bytes.Buffer
	if err := siteTmpl.Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle, err := config.Load(dir)
	if err != nil {
		t.Fatalf("revision %d: %v\n%s", p.Rev, err, b.String())
	}
	snap, err := bundle.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	snap.Revision, snap.Hash, snap.Time = p.Rev, config.Hash(snap), time.Now().UTC()
	ctx := context.Background()
	_, mod, err := st.Current(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, snap, mod); err != nil {
		t.Fatal(err)
	}
}

// assertExposed checks that the role's metrics and admin routes are on
// the node's admin address exactly while it runs.
func assertExposed(t *testing.T, admin string, c contractCase, want bool) {
	t.Helper()
	body, code := get(t, "http://"+admin+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	if got := strings.Contains(body, c.metric); got != want {
		t.Errorf("%s metrics shown: %v, want %v", c.role, got, want)
	}
	if c.route == "" {
		return
	}
	if _, code := get(t, "http://"+admin+c.route); (code == http.StatusOK) != want {
		t.Errorf("%s route %s: %d, want served %v", c.role, c.route, code, want)
	}
}

func breaks(fs ...func(t *testing.T, p *siteParams) string) []func(t *testing.T, p *siteParams) string {
	return fs
}

// holdPort binds a loopback port for the rest of the test and returns it.
func holdPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// TestNodeFollowsARebuiltStore: a node that ran revision 1 of one store,
// pointed (same state dir) at a store rebuilt from scratch, applies the new
// store's revision 1: revision numbers of two clusters say nothing about
// each other.
func TestNodeFollowsARebuiltStore(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer upstream.Close()
	stateDir, adminAddr := t.TempDir(), storetest.FreeAddr(t)
	p := siteParams{Rev: 1, Roles: "edge", HTTP: storetest.FreeAddr(t), DNS: storetest.FreeAddr(t), Upstream: upstream.URL}
	mark := func() string {
		req, _ := http.NewRequest("GET", "http://"+p.HTTP+"/", nil)
		req.Host = "shop.cdn.example.test"
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
		if err != nil {
			return ""
		}
		resp.Body.Close()
		return resp.Header.Get("X-Mark")
	}
	run := func(st *store.Store) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		a := New(Options{Node: "n1", Store: st, StateDir: stateDir, Logger: slog.New(slog.DiscardHandler), Admin: adminAddr})
		done := make(chan struct{})
		go func() { defer close(done); _ = a.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	nodeStore := func() string {
		var info NodeInfo
		body, code := get(t, "http://"+adminAddr+"/v1/node")
		if code != http.StatusOK || json.Unmarshal([]byte(body), &info) != nil {
			return ""
		}
		return info.Store
	}

	first := storetest.Start(t)
	p.Mark = "first"
	commitSite(t, storetest.Open(t, first.Endpoints()), p)
	stop := run(storetest.Open(t, first.Endpoints()))
	storetest.Eventually(t, 20*time.Second, "the node serves the first store's revision 1", func() bool { return mark() == "first" })
	firstID := nodeStore()
	stop()
	first.Close()

	second := storetest.Start(t)
	p.Mark = "second"
	commitSite(t, storetest.Open(t, second.Endpoints()), p)
	stop = run(storetest.Open(t, second.Endpoints()))
	defer stop()
	storetest.Eventually(t, 20*time.Second, "the node serves the rebuilt store's revision 1", func() bool { return mark() == "second" })
	if id := nodeStore(); id == "" || id == firstID {
		t.Fatalf("/v1/node names store %q, the first store was %q", id, firstID)
	}
}

// startOriginNode deploys and activates an origin root with one file,
// starts a store member and agent n1 on it (stopped when the test ends),
// and returns the root, the store and the agent's admin address.
func startOriginNode(t *testing.T) (root string, st *store.Store, adminAddr string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), "root")
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "index.html"), []byte("hi"), 0o644)
	if _, err := origin.Deploy(root, src, "v1"); err != nil {
		t.Fatal(err)
	}
	if err := origin.Activate(root, "v1"); err != nil {
		t.Fatal(err)
	}
	member := storetest.Start(t)
	st = storetest.Open(t, member.Endpoints())
	ctx, cancel := context.WithCancel(context.Background())
	adminAddr = storetest.FreeAddr(t)
	a := New(Options{Node: "n1", Store: st, StateDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), Admin: adminAddr})
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return root, st, adminAddr
}
