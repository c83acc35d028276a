package soak

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/multicloud"
	"github.com/intercloud/intercloud/test/netns"
	"github.com/intercloud/intercloud/test/testenv"
)

var binary string

func TestMain(m *testing.M) {
	if os.Getenv("INTERCLOUD_NETNS_HELPER") != "" {
		netns.Main(m) // a helper process: no binary to build
	}
	dir, err := os.MkdirTemp("", "intercloud-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = multicloud.BuildBinary(repoRoot(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}

// env reads the soak's settings: SOAK (length of a phase, 60s unless set:
// the version `make test` runs), SOAK_SEED, SOAK_BASELINE (1: run a
// fault-free phase first), SOAK_IDLE (idle connections), SOAK_OUT (where
// the report goes; a temporary directory unless set), SOAK_FAULTS (the
// kinds to draw from, comma-separated; all unless set) and SOAK_CLOCK (1:
// the clock step may be drawn. It steps the host's wall clock under every
// process of the machine, so `make soak`, which runs this test alone,
// sets it and `make test`, where other packages' tests run beside it,
// does not).
func env(t *testing.T) Options {
	o := Options{Binary: binary, Repo: repoRoot(), Duration: 60 * time.Second, Seed: 4, IdleConns: 200}
	if v := os.Getenv("SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK=%q: %v", v, err)
		}
		o.Duration = d
	}
	if v := os.Getenv("SOAK_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: %v", v, err)
		}
		o.Seed = n
	}
	if v := os.Getenv("SOAK_IDLE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("SOAK_IDLE=%q: %v", v, err)
		}
		o.IdleConns = n
	}
	o.Baseline = os.Getenv("SOAK_BASELINE") == "1"
	o.Clock = os.Getenv("SOAK_CLOCK") == "1"
	if v := os.Getenv("SOAK_FAULTS"); v != "" {
		for _, k := range strings.Split(v, ",") {
			if !slices.ContainsFunc(Kinds, func(x kind) bool { return x.name == k }) {
				t.Fatalf("SOAK_FAULTS: no fault kind %q", k)
			}
			if k == ClockKind && !o.Clock {
				t.Fatalf("SOAK_FAULTS names %s but SOAK_CLOCK is not 1: the clock step steps the whole host's clock", ClockKind)
			}
			o.Faults = append(o.Faults, k)
		}
	}
	return o
}

// The soak: load, faults on a seeded schedule, bad input; every
// invariant must hold. Run for 60 s in `make test`; `make soak` runs it
// for SOAK (10m) after a fault-free phase as long and writes the report
// to bench/soak. Only invariants are asserted, never times.
func TestSoak(t *testing.T) {
	opts := env(t)
	rec := Run(t, opts)
	out := os.Getenv("SOAK_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := rec.Output(out); err != nil {
		t.Fatal(err)
	}
	report, _ := os.ReadFile(filepath.Join(out, "report.txt"))
	t.Logf("report (%s):\n%s", out, report)
	for _, p := range rec.Phases {
		if probs := rec.Problems(p, CacheBytes); len(probs) > 0 {
			t.Errorf("phase %s: %d invariants broken:\n  %s", p.Name, len(probs), strings.Join(probs, "\n  "))
		}
		ok, _, _ := Counts(p.HTTP)
		dok, _, _ := Counts(p.DNS)
		if ok == 0 || dok == 0 || len(p.Control) == 0 || len(p.DNSAnswers) == 0 || len(p.Routes) == 0 {
			t.Errorf("phase %s: some load never ran: %d HTTP answers, %d DNS answers, %d commands, %d lease checks, %d route checks",
				p.Name, ok, dok, len(p.Control), len(p.DNSAnswers), len(p.Routes))
		}
	}
}

func TestScheduleIsSeededAndSequential(t *testing.T) {
	for _, d := range []time.Duration{60 * time.Second, 10 * time.Minute} {
		a, b := Schedule(7, d), Schedule(7, d)
		if !slices.Equal(a, b) {
			t.Fatalf("%s: the same seed drew two schedules:\n%v\n%v", d, a, b)
		}
		if slices.Equal(a, Schedule(8, d)) {
			t.Errorf("%s: seeds 7 and 8 drew the same schedule", d)
		}
		if len(a) == 0 {
			t.Fatalf("%s: no faults", d)
		}
		end := time.Duration(0)
		for _, p := range a {
			if p.At < end {
				t.Errorf("%s: %v starts before the previous fault's end and recovery gap (%s)", d, p, end)
			}
			if p.At+p.For > d {
				t.Errorf("%s: %v ends after the phase", d, p)
			}
			end = p.At + p.For
		}
	}
	// Over a long run every kind comes up.
	seen := map[string]bool{}
	for _, p := range Schedule(1, 3*time.Hour) {
		seen[p.Kind] = true
	}
	for _, k := range Kinds {
		if !seen[k.name] {
			t.Errorf("kind %s never drawn in three hours", k.name)
		}
	}
}

func TestAttribute(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	p := &Phase{Start: t0, End: at(100), Faults: []Fault{
		{Kind: "kill-edge", Target: "seoul-edge-1", Start: at(10), Healed: at(20), Recovered: at(25)},
		{Kind: "cut-line", Target: "dx", Start: at(50), Healed: at(60)}, // never recovered: its window ends at the heal
	}}
	tests := []struct {
		name     string
		http     []Slice
		ping     []Ping
		ops      []Op
		byKind   map[string]int64
		outside  int64
		problems int
	}{
		{"nothing failed", []Slice{{Start: at(1), End: at(3), OK: 10}}, nil, nil, map[string]int64{}, 0, 1},
		{"inside a window", []Slice{{Start: at(11), End: at(13), OK: 5, Failed: 3}}, nil, nil, map[string]int64{"kill-edge": 3}, 0, 1},
		{"within the slack after recovery", []Slice{{Start: at(26), End: at(27.5), Failed: 2}}, nil, nil, map[string]int64{"kill-edge": 2}, 0, 1},
		{"after the slack", []Slice{{Start: at(29), End: at(31), Failed: 1}}, nil, nil, map[string]int64{}, 1, 2},
		{"a slice overlapping the start", []Slice{{Start: at(49), End: at(51), Failed: 4}}, nil, nil, map[string]int64{"cut-line": 4}, 0, 1},
		{"a lost ping and a failed command", nil, []Ping{{From: "kr", Time: at(55)}, {From: "kr", Time: at(80)}}, []Op{{Kind: "apply", Start: at(12), End: at(13)}},
			map[string]int64{"cut-line": 1, "kill-edge": 1}, 1, 2},
	}
	rec := &Recording{Slack: 3 * time.Second, LeaseTTL: 3 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := *p
			q.HTTP, q.Ping, q.Control = tc.http, tc.ping, tc.ops
			b := q.Attribute(rec.Slack)
			for k, v := range tc.byKind {
				if b.ByKind[k] != v {
					t.Errorf("%s: %d, want %d (%v)", k, b.ByKind[k], v, b.ByKind)
				}
			}
			if b.Outside != tc.outside {
				t.Errorf("outside: %d, want %d: %v", b.Outside, tc.outside, b.OutsideWhat)
			}
			// The cut that never recovered is a problem of its own.
			if got := rec.Problems(&q, nil); len(got) != tc.problems {
				t.Errorf("problems: %v, want %d", got, tc.problems)
			}
		})
	}
}

func TestDeadAnswersAndMissingRoutes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	rec := &Recording{Slack: 3 * time.Second, LeaseTTL: 3 * time.Second}
	p := &Phase{Start: t0, Faults: []Fault{{Kind: "kill-edge", Target: "tokyo-edge-2", Start: at(10), Healed: at(20), Recovered: at(22)}},
		DNSAnswers: []DNSAnswer{
			{Server: "tokyo-dns", Time: at(12), Answers: []string{"10.2.0.10", "10.2.0.11"}},   // dead 2 s: allowed
			{Server: "tokyo-dns", Time: at(14.5), Answers: []string{"10.2.0.10", "10.2.0.11"}}, // dead 4.5 s: not
			{Server: "tokyo-dns", Time: at(15), Answers: []string{"10.2.0.10"}},
			{Server: "tokyo-dns", Time: at(21), Answers: []string{"10.2.0.10", "10.2.0.11"}}, // restarted
		},
		Routes: []RouteSample{
			{Gateway: "seoul-gw", Time: at(5), Bulk: BulkPrefixes},
			{Gateway: "seoul-gw", Time: at(12), Missing: []string{"10.2.0.0/16"}, Bulk: BulkPrefixes}, // in the window
			{Gateway: "tokyo-gw", Time: at(40), Bulk: BulkPrefixes - 1},                               // outside
		}}
	if got := rec.DeadAnswers(p); len(got) != 1 || !strings.Contains(got[0], "+14.5s") {
		t.Errorf("dead answers: %v, want the one at +14.5s", got)
	}
	if got := rec.MissingRoutes(p); len(got) != 1 || !strings.Contains(got[0], "tokyo-gw at +40.0s") {
		t.Errorf("missing routes: %v, want tokyo-gw's at +40s", got)
	}
}

func TestParsers(t *testing.T) {
	pct := make([]string, 100)
	for i := range pct {
		pct[i] = strconv.Itoa((i + 1) * 100)
	}
	var s Slice
	if err := parseWrk("Running 2s test\nSOAK 500 3 1 0 4 2 120 90000 "+strings.Join(pct, " ")+"\n", &s); err != nil {
		t.Fatal(err)
	}
	if s.OK != 496 || s.Failed != 10 || s.Refused != 3 || s.Timeouts != 2 || s.Hits != 120 || s.Max != 90 || s.Pct[49] != 5 || s.Pct[98] != 9.9 {
		t.Errorf("wrk: %+v", s)
	}
	if err := parseWrk("unable to connect to 10.1.0.10:80 Connection refused\n", &Slice{}); err == nil {
		t.Error("wrk: no SOAK line parsed without an error")
	}

	dnsperf := `Statistics:

  Queries sent:         200
  Queries completed:    197 (98.50%)
  Queries lost:         3 (1.50%)

  Response codes:       NOERROR 195 (98.98%), SERVFAIL 2 (1.02%)
  Average packet size:  request 39, response 55
  Run time (s):         2.001
  Queries per second:   98.45

  Average Latency (s):  0.000250 (min 0.000100, max 0.004000)
`
	s = Slice{}
	if err := parseDNSPerf(dnsperf, &s); err != nil {
		t.Fatal(err)
	}
	if s.OK != 195 || s.Failed != 5 || s.Lost != 3 || s.Mean != 0.25 || s.Max != 4 {
		t.Errorf("dnsperf: %+v", s)
	}

	ping := `PING 10.2.0.100 (10.2.0.100) 56(84) bytes of data.
[1767225600.100000] 64 bytes from 10.2.0.100: icmp_seq=1 ttl=62 time=0.1 ms
[1767225601.600000] no answer yet for icmp_seq=2
[1767225601.700000] From 10.1.0.1 icmp_seq=3 Destination Net Unreachable
[1767225602.100000] 64 bytes from 10.2.0.100: icmp_seq=4 ttl=62 time=0.1 ms
`
	ps := parsePing("kr", ping)
	var oks []bool
	for _, p := range ps {
		oks = append(oks, p.OK)
	}
	if !slices.Equal(oks, []bool{true, false, false, true}) {
		t.Errorf("ping: %+v", ps)
	}
	if got := ecsOption("10.2.0.0/24"); got != "000118000a0200" {
		t.Errorf("ECS option: %s", got)
	}
}

// The report and the timeline come from a recording alone.
func TestReportAndPlotFromRecording(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	mk := func(name string, lat float64, faults []Fault) *Phase {
		p := &Phase{Name: name, Start: t0, End: at(60), Faults: faults,
			ProcsStart: []ProcStat{{Name: "seoul-edge-1", Pid: 1, RSS: 40 << 20, FDs: 20}},
			ProcsEnd:   []ProcStat{{Name: "seoul-edge-1", Pid: 1, RSS: 41 << 20, FDs: 22}}}
		for i := 0; i < 60; i += 2 {
			pc := make([]float64, 100)
			for j := range pc {
				pc[j] = lat * float64(j+1) / 50
			}
			s := Slice{Tool: "wrk", Target: "seoul-edge-1", Start: at(float64(i)), End: at(float64(i + 2)), OK: 100, Pct: pc, Max: lat * 3}
			if len(faults) > 0 && i == 12 {
				s.Failed = 7
			}
			p.HTTP = append(p.HTTP, s)
		}
		return p
	}
	rec := &Recording{Seed: 3, Duration: time.Minute, LeaseTTL: 3 * time.Second, Slack: 3 * time.Second, Phases: []*Phase{
		mk("baseline", 1, nil),
		mk("faults", 2, []Fault{{Kind: "kill-edge", Target: "seoul-edge-1", Start: at(11), Healed: at(15), Recovered: at(17)}}),
	}}
	dir := t.TempDir()
	if err := rec.Output(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.txt"))
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	for _, want := range []string{
		"seed 3",
		"HTTP (wrk, hits/misses/ranges/uncacheable): 3000 answered, 7 failed",
		"kill-edge        7",
		"Failures outside every fault window: 0",
		"Added HTTP latency under faults (faults − baseline): p50 +1.00 ms",
		"Invariants: all held.",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	png, err := os.ReadFile(filepath.Join(dir, "timeline.png"))
	if err != nil || len(png) < 1000 || string(png[1:4]) != "PNG" {
		t.Errorf("timeline.png: %d bytes, %v", len(png), err)
	}
	again, err := Load(filepath.Join(dir, "run.json.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Phases) != 2 || again.Phases[1].Faults[0].Kind != "kill-edge" {
		t.Errorf("run.json round trip: %+v", again)
	}
}

// The disk-full fault fills the edge's own tmpfs and the heal empties it;
// without a disk tier it does nothing and says so.
func TestFillDisk(t *testing.T) {
	testenv.NeedRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("a tmpfs mount (%v: %s)", err, out), "util-linux (mount) and root")
	}
	defer exec.Command("umount", "-l", dir).Run()
	r := &runner{disks: map[string]string{"seoul-edge-1": dir}}
	heal, note, err := r.fillDisk("seoul-edge-1")
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail != 0 {
		t.Fatalf("after the fill: %d blocks available (%v); %s", st.Bavail, err, note)
	}
	if err := heal(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Statfs(dir, &st); err != nil || st.Bavail == 0 {
		t.Fatalf("after the heal: %d blocks available (%v)", st.Bavail, err)
	}
	heal, note, err = r.fillDisk("tokyo-edge-1")
	if heal != nil || err != nil || !strings.Contains(note, "disk tier not configured") {
		t.Errorf("no disk tier: heal %v, err %v, note %q", heal != nil, err, note)
	}
	site := &config.Site{Nodes: []config.Node{{Name: "e", Cache: config.Cache{Memory: 1 << 20}}}}
	if got := diskTiers(site); len(got) != 0 {
		t.Errorf("disk tiers of a memory-only site: %v", got)
	}
}

// The soak's BIRD config is the demo's with the bulk prefixes and a short
// error wait, and BIRD itself accepts it.
func TestBirdConf(t *testing.T) {
	path, err := writeBirdConf(t.TempDir(), filepath.Join(repoRoot(), multicloud.ExampleDir, "onprem", "bird.conf"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "/24 unreachable;"); n != BulkPrefixes {
		t.Errorf("%d bulk routes, want %d", n, BulkPrefixes)
	}
	testenv.NeedTool(t, "bird", "bird2")
	if out, err := exec.Command("bird", "-p", "-c", path).CombinedOutput(); err != nil {
		t.Fatalf("bird -p: %v: %s", err, out)
	}
}

// The clock step is the last kind: drawn without it, a seed gives the
// schedule it gave before the kind existed (the 60 s version's), and
// SOAK_FAULTS narrows the draw.
func TestScheduleKinds(t *testing.T) {
	if got := kindsOf(nil, true); len(got) != len(Kinds) {
		t.Fatalf("every kind with the clock: %d of %d", len(got), len(Kinds))
	}
	for _, p := range Schedule(4, 3*time.Hour, kindsOf(nil, false)...) {
		if p.Kind == ClockKind {
			t.Fatalf("the clock step drawn without SOAK_CLOCK: %v", p)
		}
	}
	only := Schedule(9, 2*time.Minute, kindsOf([]string{ClockKind, "kill-edge"}, true)...)
	if len(only) == 0 {
		t.Fatal("no fault drawn from clock-step and kill-edge")
	}
	for _, p := range only {
		if p.Kind != ClockKind && p.Kind != "kill-edge" {
			t.Errorf("SOAK_FAULTS=clock-step,kill-edge drew %v", p)
		}
		if p.Kind == ClockKind && (p.For > 12*time.Second || p.Target != "host") {
			t.Errorf("clock step %v: longer than unstepPings allows, or not the host", p)
		}
	}
	if got := kindsOf([]string{ClockKind}, false); len(got) != 0 {
		t.Errorf("the clock step without SOAK_CLOCK: %v", got)
	}
}

// ping's wall-clock stamps of a clock fault's window go back on the
// soak's clock; those before and after it stay.
func TestUnstepPings(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	f := Fault{Kind: ClockKind, Target: "host", Start: at(10), Healed: at(20)}
	var in, want []Ping
	for s := 0.0; s < 40; s += 0.5 {
		want = append(want, Ping{From: "kr", Time: at(s), OK: true})
		stamp := at(s)
		if s >= 10.2 && s < 20.1 { // the step lands 0.2 s into the window
			stamp = stamp.Add(ClockStep)
		}
		in = append(in, Ping{From: "kr", Time: stamp, OK: true})
	}
	// A gap of 5 s without answers after the window: no step.
	in, want = append(in[:60:60], in[70:]...), append(want[:60:60], want[70:]...)
	got := unstepPings(in, []Fault{f})
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Fatalf("ping %d at %s, want %s", i, got[i].Time.Sub(t0), want[i].Time.Sub(t0))
		}
	}
	// Without a clock fault made, nothing moves.
	f.NotMade = "clock_settime: operation not permitted"
	if got := unstepPings(in, []Fault{f}); !got[25].Time.Equal(in[25].Time) {
		t.Errorf("moved without a clock fault: %s", got[25].Time.Sub(t0))
	}
}

// The step itself, on the host's real clock: CLOCK_REALTIME goes
// ClockStep ahead of CLOCK_MONOTONIC and comes back to the offset it had.
// It steps the clock of every process on the machine, so it runs only
// with SOAK_CLOCK=1 (as make soak sets), never in make test.
func TestStepClock(t *testing.T) {
	if os.Getenv("SOAK_CLOCK") != "1" {
		t.Skip("steps the host's wall clock: runs only with SOAK_CLOCK=1 (make soak), alone on the machine")
	}
	testenv.NeedRoot(t)
	before, err := realMinusMono()
	if err != nil {
		t.Fatal(err)
	}
	s, err := stepClock(ClockStep, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.restore() })
	during, err := realMinusMono()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(during-before) - ClockStep; d.Abs() > 50*time.Millisecond {
		t.Errorf("stepped by %s, want %s", time.Duration(during-before), ClockStep)
	}
	// The soak's own clock does not move with it: its wall reading is
	// ClockStep behind time.Now's.
	if d := time.Now().Round(0).Sub(now().Round(0)) - ClockStep; d.Abs() > 50*time.Millisecond {
		t.Errorf("the soak's clock is %s off the unstepped time", d)
	}
	time.Sleep(200 * time.Millisecond)
	miss, err := s.restore()
	if err != nil {
		t.Fatal(err)
	}
	after, err := realMinusMono()
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Duration(after - before); d.Abs() > 50*time.Millisecond {
		t.Errorf("restored %s from where it was (restore reported %s)", d, miss)
	}
	if again, err := s.restore(); again != 0 || err != nil {
		t.Errorf("a second restore: %s, %v", again, err)
	}
}

// Failures in a clock step's window are blamed on it like any fault's;
// those the load generators made on their own wall clock are counted
// apart, and only there.
func TestClockToolsBlame(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	p := &Phase{Start: t0, End: at(100), Faults: []Fault{
		{Kind: ClockKind, Target: "host", Start: at(10), Healed: at(20), Recovered: at(21)},
		{Kind: "kill-edge", Target: "seoul-edge-1", Start: at(50), Healed: at(60), Recovered: at(61)},
	},
		HTTP: []Slice{
			{Tool: "wrk", Start: at(9), End: at(11), OK: 300, Failed: 2, Timeouts: 2},
			{Tool: "wrk", Start: at(19), End: at(21), OK: 300, Failed: 1},
			{Tool: "wrk", Start: at(55), End: at(57), OK: 30, Failed: 5, Timeouts: 2},
		},
		DNS: []Slice{{Tool: "dnsperf", Start: at(18), End: at(30), Failed: 1, Err: "signal: killed; dnsperf printed no statistics"}},
	}
	b := p.Attribute(3 * time.Second)
	if b.ByKind[ClockKind] != 4 || b.ByKind["kill-edge"] != 5 || b.Outside != 0 {
		t.Fatalf("blame: %+v", b)
	}
	if b.ClockTools != 3 {
		t.Errorf("the load generators' own failures in the clock windows: %d, want 3 (2 wrk timeouts, 1 dnsperf slice)", b.ClockTools)
	}
}
