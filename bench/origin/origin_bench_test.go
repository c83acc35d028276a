// Package origin_test benchmarks the origin server against nginx serving
// the same files from the same directory, in the same run, with wrk.
package origin_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/bench/internal/nodeproc"
	"github.com/intercloud/intercloud/origin"
	"github.com/intercloud/intercloud/test/testenv"
)

// TestMain removes the intercloud binary built for the package at the end.
func TestMain(m *testing.M) { nodeproc.Main(m) }

// fixture is one content root deployed as a version, served by both peers.
type fixture struct {
	root      string
	originURL string
	nginxURL  string
	nginxPID  int
	originPID int
	// floorURL is the least net/http can do: the file's bytes from memory
	// with a Content-Length. It shows how much of the gap to nginx is
	// net/http itself rather than the origin's work.
	floorURL string
}

var sizes = []struct {
	name string
	size int
}{
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

func setup(b *testing.B) *fixture {
	b.Helper()
	nginx := testenv.NeedTool(b, "nginx", "nginx-light")
	testenv.NeedTool(b, "wrk", "wrk")
	dir := b.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		b.Fatal(err)
	}
	for _, s := range sizes {
		buf := make([]byte, s.size)
		rand.Read(buf)
		if err := os.WriteFile(filepath.Join(src, s.name+".bin"), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	root := filepath.Join(dir, "root")
	res, err := origin.Deploy(root, src, "v1")
	if err != nil {
		b.Fatal(err)
	}
	if err := origin.Activate(root, res.Version); err != nil {
		b.Fatal(err)
	}

	// Our side as operators run it: an `intercloud origin` process. Like
	// the nginx beside it, it logs no line per request.
	bin := nodeproc.Binary(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "origin", "--root", root, "--listen", addr)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		cmd.Wait()
		if b.Failed() {
			b.Logf("intercloud origin:\n%s", out.String())
		}
	})
	f := &fixture{root: root, originURL: "http://" + addr, originPID: cmd.Process.Pid}
	for i := 0; ; i++ {
		if resp, err := http.Get(f.originURL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if i > 200 {
			b.Fatalf("intercloud origin not ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.floorURL = startFloor(b, src)
	f.nginxURL, f.nginxPID = startNginx(b, nginx, dir, filepath.Join(root, origin.CurrentLink))
	return f
}

// startFloor serves the files of src from memory with a bare handler.
func startFloor(b *testing.B, src string) string {
	b.Helper()
	files := map[string][]byte{}
	for _, s := range sizes {
		body, err := os.ReadFile(filepath.Join(src, s.name+".bin"))
		if err != nil {
			b.Fatal(err)
		}
		files["/"+s.name+".bin"] = body
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header()["Content-Type"] = []string{"application/octet-stream"}
		w.Header()["Content-Length"] = []string{strconv.Itoa(len(body))}
		w.Write(body)
	})}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// startNginx runs nginx in the foreground on a free loopback port with a
// config comparable to the origin's defaults: sendfile, no access log,
// long keep-alive, one worker per CPU.
func startNginx(b *testing.B, bin, dir, docroot string) (string, int) {
	b.Helper()
	port := freePort(b)
	prefix := filepath.Join(dir, "nginx")
	for _, d := range []string{"", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
worker_processes auto;
daemon off;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  client_body_temp_path %[2]s/tmp;
  proxy_temp_path %[2]s/tmp;
  fastcgi_temp_path %[2]s/tmp;
  uwsgi_temp_path %[2]s/tmp;
  scgi_temp_path %[2]s/tmp;
  types { application/octet-stream bin; }
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:%[3]d;
    root %[4]s;
  }
}
`, user, prefix, port, docroot)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start nginx: %v", err)
	}
	b.Cleanup(func() {
		// The master takes its workers down on SIGQUIT; the group kill is
		// the backstop.
		cmd.Process.Signal(syscall.SIGQUIT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	for i := 0; ; i++ {
		resp, err := http.Get(url + "/1KiB.bin")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("nginx answers %d; log: %s", resp.StatusCode, readFile(filepath.Join(prefix, "error.log")))
			}
			break
		}
		if i == 100 {
			b.Fatalf("nginx did not start: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return url, cmd.Process.Pid
}

// cpuSeconds is the user+system CPU time of a process and its children
// still running (nginx's workers), from /proc. On a shared machine
// requests per CPU-second move much less than requests per second.
func cpuSeconds(pid int) float64 {
	total := procCPU(pid)
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(kids)) {
		if k, err := strconv.Atoi(f); err == nil {
			total += procCPU(k)
		}
	}
	return total
}

func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// the 14th and 15th fields of the line.
	s := string(b)
	fs := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fs) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(fs[11], 64)
	st, _ := strconv.ParseFloat(fs[12], 64)
	return (u + st) / 100 // USER_HZ
}

func readFile(p string) string { b, _ := os.ReadFile(p); return string(b) }

func freePort(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	// socketErrRe matches a wrk error line with any non-zero count.
	socketErrRe = regexp.MustCompile(`Socket errors: .*[1-9]`)
)

// runWrk loads url for d and returns requests per second. Any non-2xx
// answer or socket error fails the benchmark: speed of errors is no speed.
func runWrk(b *testing.B, url string, d time.Duration) float64 {
	b.Helper()
	out, err := exec.Command("wrk", "-t2", "-c64", "-d"+d.String(), "--timeout", "10s", url).CombinedOutput()
	if err != nil {
		b.Fatalf("wrk %s: %v\n%s", url, err, out)
	}
	s := string(out)
	if strings.Contains(s, "Non-2xx") || socketErrRe.MatchString(s) {
		b.Fatalf("wrk %s saw errors:\n%s", url, s)
	}
	m := rpsRe.FindStringSubmatch(s)
	if m == nil {
		b.Fatalf("wrk output without Requests/sec:\n%s", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		b.Fatal(err)
	}
	return v
}

// rounds of alternating runs. The machine is shared: each round's ratio
// compares two runs a few seconds apart, and the median of the rounds'
// ratios is what is reported, with the median rates beside it.
const rounds = 5

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// BenchmarkOriginVsNginx serves each file size from both servers,
// alternating in the same run, and reports both rates and their ratio
// (origin/nginx; the target is ≥ 0.8), and the requests each served per
// CPU-second of its own process(es) with that ratio too. For scale it also
// reports what a bare net/http handler serving the bytes from memory gets
// against nginx (nethttp_floor_ratio). The measurement is wrk's, 2 s per
// run: the rounds run once whatever b.N is (make bench passes -benchtime
// 1x, as for the other side-by-side benchmarks).
func BenchmarkOriginVsNginx(b *testing.B) {
	f := setup(b)
	const d = 2 * time.Second
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) {
			path := "/" + s.name + ".bin"
			runWrk(b, f.originURL+path, time.Second) // warm-up: ETag computed, pages cached
			runWrk(b, f.nginxURL+path, time.Second)
			var o, n, ratio, cpuRatio, floor []float64
			for r := 0; r < rounds; r++ {
				c0 := cpuSeconds(f.originPID)
				or := runWrk(b, f.originURL+path, d)
				oc := cpuSeconds(f.originPID) - c0
				c0 = cpuSeconds(f.nginxPID)
				nr := runWrk(b, f.nginxURL+path, d)
				nc := cpuSeconds(f.nginxPID) - c0
				fr := runWrk(b, f.floorURL+path, d)
				o, n = append(o, or), append(n, nr)
				ratio = append(ratio, or/nr)
				floor = append(floor, fr/nr)
				if oc > 0 && nc > 0 {
					cpuRatio = append(cpuRatio, (or/oc)/(nr/nc))
				}
			}
			b.ReportMetric(median(o), "origin_req/s")
			b.ReportMetric(median(n), "nginx_req/s")
			b.ReportMetric(median(ratio), "ratio")
			if len(cpuRatio) > 0 {
				b.ReportMetric(median(cpuRatio), "cpu_ratio")
			}
			b.ReportMetric(median(floor), "nethttp_floor_ratio")
			b.ReportMetric(median(o)*float64(s.size)/(1<<20), "origin_MiB/s")
		})
	}
}
