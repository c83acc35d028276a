package dns

import (
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/role"
	mdns "github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testutilGauge(g prometheus.Gauge) float64 { return testutil.ToFloat64(g) }

func testutilGauge2(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s, err := New(Options{Addr: "127.0.0.1:0", Logger: quietLogger(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := role.Apply(t.Context(), s, testSnapshot("")); err != nil {
		t.Fatal(err)
	}
	defer s.Close(t.Context())
	u, _ := s.Addrs()
	exchange(t, u.String(), "udp", qA("shop."+zone))
	exchange(t, u.String(), "tcp", qA("nope."+zone))
	want := `
# HELP intercloud_dns_answers_total Address answers by the location they came from (a cloud, all, fail-open, ns).
# TYPE intercloud_dns_answers_total counter
intercloud_dns_answers_total{location="all"} 0
intercloud_dns_answers_total{location="frankfurt"} 0
intercloud_dns_answers_total{location="seoul"} 1
intercloud_dns_answers_total{location="tokyo"} 0
intercloud_dns_answers_total{location="virginia"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "intercloud_dns_answers_total"); err != nil {
		t.Error(err)
	}
	if v := testutil.ToFloat64(s.m.queries[0][0][mdns.RcodeSuccess]); v != 1 {
		t.Errorf("udp A NOERROR = %v", v)
	}
	if v := testutil.ToFloat64(s.m.queries[1][0][mdns.RcodeNameError]); v != 1 {
		t.Errorf("tcp A NXDOMAIN = %v", v)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

func TestQueryLog(t *testing.T) {
	var buf syncBuffer
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, addr := startServer(t, testSnapshot(""), func(o *Options) { o.Logger, o.QueryLog = lg, true })
	exchange(t, addr, "udp", qA("shop."+zone))
	exchange(t, addr, "tcp", qA("nope."+zone))
	time.Sleep(50 * time.Millisecond)
	out := buf.String()
	for _, want := range []string{"proto=udp client=127.0.0.1 name=shop.cdn.example.test. type=1 rcode=NOERROR pool=seoul",
		"proto=tcp", "rcode=NXDOMAIN"} {
		if !strings.Contains(out, want) {
			t.Errorf("query log lacks %q:\n%s", want, out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A node that loses the dns role and gets it back starts a new server on
// the same registry: Close must give the metric names back.
func TestServerRestartsOnTheSameRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := New(Options{Addr: "127.0.0.1:0", Logger: quietLogger(), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Addr: "127.0.0.1:0", Logger: quietLogger(), Registry: reg}); err == nil {
		t.Fatal("two live servers registered the same metrics")
	}
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	second, err := New(Options{Addr: "127.0.0.1:0", Logger: quietLogger(), Registry: reg})
	if err != nil {
		t.Fatalf("a server after Close: %v", err)
	}
	second.Close(t.Context())
}
