// Package edge_test benchmarks the edge cache against nginx proxy_cache and
// Varnish in the same run: the same origin, the same objects, the same wrk
// load (cache hits, -c64), and reports throughput, p99 latency and RSS as
// ratios edge/peer.
package edge_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bench/internal/nodeproc"
	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/testenv"
)

const (
	host      = "shop.cdn.test"
	cacheSize = 256 << 20
	duration  = "3s"
	rounds    = 3
)

var sizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"100KiB", 100 << 10}}

// peer is one cache under test.
type peer struct {
	name string
	url  string
	pids func() []int
}

func freePort(b *testing.B) int {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startOrigin(b *testing.B) string {
	bodies := map[string][]byte{}
	for _, s := range sizes {
		bodies["/"+s.name] = bytes.Repeat([]byte("x"), s.size)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if strings.HasPrefix(r.URL.Path, "/fill/") {
			body, ok = fillBody, true
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("ETag", `"`+r.URL.Path+`"`)
		w.Write(body)
	})}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// startEdge runs our side as operators run it: an `intercloud node`
// process with the edge role (bench/internal/nodeproc). Both sides log
// every request in nginx's combined format to a file, buffered alike
// (64 KiB, flushed every second).
func startEdge(b *testing.B, originAddr string) peer {
	port := freePort(b)
	accessLog := benchAccessLog(b)
	snap := &config.Snapshot{
		Site: config.Site{Name: "bench", DNS: config.DNS{Zone: "cdn.test."}, Clouds: []config.Cloud{{Name: "c"}},
			Nodes: []config.Node{{Name: "bench", Cloud: "c", Roles: []config.Role{config.RoleEdge}, Address: "127.0.0.1",
				Listen: config.Listen{HTTP: fmt.Sprintf("127.0.0.1:%d", port)}, Cache: config.Cache{Memory: cacheSize},
				AccessLog: accessLog}}},
		Distributions: []config.Distribution{{Name: "shop", Spec: config.Spec{
			Origins:   map[string]config.Origin{"o": {URL: "http://" + originAddr}},
			Behaviors: []config.Behavior{{Path: "*", Target: "o"}},
		}}},
	}
	n := nodeproc.Start(b, snap, "bench")
	return peer{"edge", fmt.Sprintf("http://127.0.0.1:%d", port), func() []int { return []int{n.Pid} }}
}

// benchAccessLog is our side's access log: nginx's combined format to a
// file, buffered as nginx's is below (buffer=64k flush=1s).
func benchAccessLog(b *testing.B) *config.AccessLog {
	return &config.AccessLog{Path: filepath.Join(b.TempDir(), "access.log"), Format: "combined",
		Buffer: 64 << 10, Flush: config.Duration(time.Second)}
}

func startProcess(b *testing.B, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatalf("start %s: %v", name, err)
	}
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if b.Failed() {
			b.Logf("%s output:\n%s", name, out.String())
		}
	})
	return cmd
}

func startNginx(b *testing.B, originAddr string) (peer, bool) {
	n, ok := launchNginx(b, originAddr, cacheSize, "")
	if !ok {
		return peer{}, false
	}
	return peer{"nginx", n.url, func() []int { return processTree(n.cmd.Process.Pid) }}, true
}

// nginxProc is a running nginx of nginxConf; start runs it (again).
type nginxProc struct {
	url   string
	port  int
	cmd   *exec.Cmd
	start func() *exec.Cmd
}

func launchNginx(b *testing.B, originAddr string, size int64, extra string) (*nginxProc, bool) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		testenv.NeedTool(b, "nginx", "nginx-light")
		return nil, false
	}
	dir := worldDir(b)
	port := freePort(b)
	cf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cf, []byte(nginxConf(dir, originAddr, size, port, extra)), 0o644); err != nil {
		b.Fatal(err)
	}
	n := &nginxProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), port: port}
	n.start = func() *exec.Cmd { return startProcess(b, bin, "-p", dir, "-c", cf, "-g", "daemon off;") }
	n.cmd = n.start()
	return n, true
}

// nginxConf is nginx as Debian ships it (sendfile, tcp_nopush) with a
// proxy cache of size bytes in dir, logging like our side; extra goes
// into the cached location.
func nginxConf(dir, originAddr string, size int64, port int, extra string) string {
	return fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  # Debian's packaged defaults (/etc/nginx/nginx.conf): cache hits leave
  # with sendfile.
  sendfile on;
  tcp_nopush on;
  access_log %[1]s/access.log combined buffer=64k flush=1s;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fcgi; uwsgi_temp_path %[1]s/uwsgi; scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=edge:64m max_size=%[3]d inactive=1h use_temp_path=off;
  keepalive_requests 1000000;
  upstream origin { server %[2]s; keepalive 64; }
  server {
    listen 127.0.0.1:%[4]d;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_lock on;
      add_header Cache-Status $upstream_cache_status;
      %[5]s
    }
  }
}
`, dir, originAddr, size, port, extra)
}

func startVarnish(b *testing.B, originAddr string) (peer, bool) {
	bin, err := exec.LookPath("varnishd")
	if err != nil {
		testenv.NeedTool(b, "varnishd", "varnish")
		return peer{}, false
	}
	dir := worldDir(b)
	port := freePort(b)
	cmd := startProcess(b, bin, "-n", dir, "-a", fmt.Sprintf("127.0.0.1:%d", port), "-b", originAddr, "-F",
		"-s", fmt.Sprintf("malloc,%d", cacheSize), "-p", "default_ttl=3600")
	return peer{"varnish", fmt.Sprintf("http://127.0.0.1:%d", port), func() []int { return processTree(cmd.Process.Pid) }}, true
}

// worldDir is a temporary directory the peers' unprivileged workers can
// use (b.TempDir's parent is private to root).
func worldDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "edge-bench-")
	if err != nil {
		b.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// processTree lists pid and all its descendants.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

func rssMiB(pids []int) float64 {
	var kb int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.ParseInt(f[1], 10, 64)
				kb += n
			}
		}
	}
	return float64(kb) / 1024
}

// waitHit polls until the peer answers the object (and caches it).
func waitHit(b *testing.B, p peer, path string) {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", p.url+path, nil)
		req.Host = host
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("%s never answered %s", p.name, path)
}

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99RE = regexp.MustCompile(`\s99%\s+([0-9.]+)(us|ms|s)`)
)

// wrk runs the load and returns requests/s and p99 in milliseconds.
func wrk(b *testing.B, p peer, path, dur string) (float64, float64) {
	out, err := exec.Command("wrk", "-t2", "-c64", "-d"+dur, "--latency", "-H", "Host: "+host, p.url+path).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk against %s: %v\n%s", p.name, err, out)
	}
	if strings.Contains(string(out), "Non-2xx") || strings.Contains(string(out), "Socket errors") {
		b.Logf("wrk against %s reported errors:\n%s", p.name, out)
	}
	m, l := rpsRE.FindSubmatch(out), p99RE.FindSubmatch(out)
	if m == nil || l == nil {
		b.Fatalf("cannot parse wrk output:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	p99, _ := strconv.ParseFloat(string(l[1]), 64)
	switch string(l[2]) {
	case "us":
		p99 /= 1000
	case "s":
		p99 *= 1000
	}
	return rps, p99
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// fillBody is served for /fill/N: distinct 100 KiB objects that overflow
// the caches.
var fillBody = bytes.Repeat([]byte("f"), 100<<10)

// fill pushes twice the cache size of distinct objects through a peer.
func fill(b *testing.B, p peer) {
	n := 2 * cacheSize / len(fillBody)
	var wg sync.WaitGroup
	var failed atomic.Int64
	next := atomic.Int64{}
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/fill/%d", p.url, i), nil)
				req.Host = host
				resp, err := c.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.Errorf("%s: %d of %d fill requests failed", p.name, failed.Load(), n)
	}
}

// startPeers starts the origin and the caches in front of it: the edge,
// then nginx and Varnish unless EDGE_BENCH_ONLY=1 (the edge alone, for
// profiling it).
func startPeers(b *testing.B) []peer {
	originAddr := startOrigin(b)
	peers := []peer{startEdge(b, originAddr)}
	if os.Getenv("EDGE_BENCH_ONLY") == "" {
		if p, ok := startNginx(b, originAddr); ok {
			peers = append(peers, p)
		}
		if p, ok := startVarnish(b, originAddr); ok {
			peers = append(peers, p)
		}
	}
	return peers
}

// BenchmarkCacheFillRSS overflows each cache with twice its size of
// distinct 100 KiB objects and reports the resident memory after, against
// the target of the configured size + 64 MiB.
func BenchmarkCacheFillRSS(b *testing.B) {
	peers := startPeers(b)
	for _, p := range peers {
		waitHit(b, p, "/1KiB")
		fill(b, p)
		// Right after the fill (the garbage of the last fills not yet
		// collected), and settled two seconds later, every peer alike.
		peak := rssMiB(p.pids())
		time.Sleep(2 * time.Second)
		rss := rssMiB(p.pids())
		b.ReportMetric(peak, p.name+"_rss_after_fill_MiB")
		b.ReportMetric(rss, p.name+"_rss_MiB")
		if p.name == "edge" && rss > float64(cacheSize>>20)+64 {
			b.Logf("edge RSS %.0f MiB is above the target of %d MiB", rss, cacheSize>>20+64)
		}
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkEdgeVsPeers measures cache-hit throughput, p99 and RSS of the
// edge and of nginx proxy_cache and Varnish, one after the other on the
// same machine, and reports edge/peer ratios.
func BenchmarkEdgeVsPeers(b *testing.B) {
	testenv.NeedTool(b, "wrk", "wrk")
	peers := startPeers(b)
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) {
			rps := map[string][]float64{}
			p99 := map[string][]float64{}
			for _, p := range peers {
				waitHit(b, p, "/"+s.name)
				wrk(b, p, "/"+s.name, "1s") // warm up connections and caches
			}
			// Rounds alternate between the peers so that a noisy
			// neighbour on the machine hurts them alike; medians are kept.
			for round := 0; round < rounds; round++ {
				for _, p := range peers {
					r, l := wrk(b, p, "/"+s.name, duration)
					rps[p.name] = append(rps[p.name], r)
					p99[p.name] = append(p99[p.name], l)
				}
			}
			for _, p := range peers {
				b.ReportMetric(median(rps[p.name]), p.name+"_req/s")
				b.ReportMetric(median(p99[p.name]), p.name+"_p99_ms")
				b.ReportMetric(rssMiB(p.pids()), p.name+"_rss_MiB")
			}
			for _, p := range peers[1:] {
				b.ReportMetric(median(rps["edge"])/median(rps[p.name]), "edge/"+p.name+"_req/s")
				b.ReportMetric(median(p99["edge"])/median(p99[p.name]), "edge/"+p.name+"_p99")
			}
			// One wrk run per peer is the measurement; b.N is not a loop count here.
			b.ReportMetric(0, "ns/op")
		})
	}
}
