package soak

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// sliceLen is how long one slice of wrk or dnsperf runs: failures are
// counted, and blamed on fault windows, per slice.
const sliceLen = 2 * time.Second

// wrkScript mixes the requests: hits (a static file), misses (one of 2,000
// query strings of a page that is fresh for 5 s), ranges and uncacheable
// API calls; each connection waits 10 ms between requests so that the
// load stays well below what two shared cores can give. done() prints one
// line: requests, the failures wrk counts, cache hits, the maximum and the
// latency percentiles 1..100 (microseconds).
const wrkScript = `
local threads = {}
setup = function(thread) table.insert(threads, thread) end
n, hits = 0, 0
request = function()
  n = n + 1
  local k = n % 10
  if k < 5 then
    return wrk.format("GET", "/static/app.css", {Host = "static.cdn.example.test"})
  elseif k < 7 then
    return wrk.format("GET", "/index.html?v=" .. math.random(2000), {Host = "shop.cdn.example.test"})
  elseif k < 9 then
    return wrk.format("GET", "/static/app.css", {Host = "static.cdn.example.test", Range = "bytes=0-99"})
  end
  return wrk.format("GET", "/api/version.json", {Host = "shop.cdn.example.test"})
end
response = function(status, headers, body)
  local cs = headers["Cache-Status"] or headers["cache-status"] or ""
  if string.find(cs, "; hit", 1, true) then hits = hits + 1 end
end
delay = function() return 10 end
done = function(summary, latency, requests)
  local hits = 0
  for _, t in ipairs(threads) do hits = hits + (t:get("hits") or 0) end
  local e = summary.errors
  io.write(string.format("SOAK %d %d %d %d %d %d %d %d", summary.requests, e.connect, e.read, e.write, e.status, e.timeout, hits, latency.max))
  for p = 1, 100 do io.write(string.format(" %d", latency:percentile(p))) end
  io.write("\n")
end
`

// done() runs in the main script state: the hits each thread counted are
// read from the threads setup() kept.

// wrkLoop runs wrk slices against one edge until ctx ends.
func (r *runner) wrkLoop(ctx context.Context, ns, edge string) []Slice {
	var out []Slice
	script := r.topo.Dir + "/soak.lua"
	for ctx.Err() == nil {
		s := Slice{Tool: "wrk", Target: edge, Start: now()}
		rctx, cancel := context.WithTimeout(ctx, sliceLen+10*time.Second)
		o, err := r.topo.Run(rctx, ns, "wrk", "-t1", "-c2", "-d"+sliceLen.String(), "--timeout", "2s", "-s", script,
			"http://"+Edges[edge]+"/")
		cancel()
		s.End = now()
		if ctx.Err() != nil {
			break // cut short by the end of the phase: not a result
		}
		if perr := parseWrk(o, &s); perr != nil {
			s.Failed, s.Err = 1, fmt.Sprintf("%v; %v", err, perr)
			time.Sleep(200 * time.Millisecond)
		}
		out = append(out, s)
	}
	return out
}

// parseWrk reads the SOAK line the script prints.
func parseWrk(out string, s *Slice) error {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 9+100 || f[0] != "SOAK" {
			continue
		}
		var v [8]int64
		for i := range v {
			n, err := strconv.ParseInt(f[1+i], 10, 64)
			if err != nil {
				return fmt.Errorf("wrk: %q: %w", l, err)
			}
			v[i] = n
		}
		failed := v[1] + v[2] + v[3] + v[4] + v[5]
		s.Failed = failed
		s.OK = max(v[0]-v[4], 0) // status errors are among the requests
		s.Refused = v[1]
		s.Timeouts = v[5]
		s.Hits = v[6]
		s.Max = float64(v[7]) / 1000
		s.Pct = make([]float64, 100)
		for i := range 100 {
			n, err := strconv.ParseFloat(f[9+i], 64)
			if err != nil {
				return fmt.Errorf("wrk: %q: %w", l, err)
			}
			s.Pct[i] = n / 1000
		}
		if s.OK == 0 {
			s.Pct = nil
		}
		return nil
	}
	return fmt.Errorf("wrk printed no SOAK line: %s", firstLine(out))
}

// dnsperfLoop runs dnsperf slices against one DNS server until ctx ends;
// ecs, when set, is sent as EDNS Client Subnet. A query unanswered after
// 3 s is lost (dig's own wait is 5 s).
func (r *runner) dnsperfLoop(ctx context.Context, ns, server, name, ecs string) []Slice {
	var out []Slice
	args := []string{"-s", server, "-d", r.topo.Dir + "/queries.txt", "-l", strconv.Itoa(int(sliceLen.Seconds())), "-Q", "100", "-c", "1", "-t", "3"}
	target := name
	if ecs != "" {
		args = append(args, "-E", "8:"+ecsOption(ecs))
		target += " (ECS)"
	}
	for ctx.Err() == nil {
		s := Slice{Tool: "dnsperf", Target: target, Start: now()}
		rctx, cancel := context.WithTimeout(ctx, sliceLen+10*time.Second)
		o, err := r.topo.Run(rctx, ns, "dnsperf", args...)
		cancel()
		s.End = now()
		if ctx.Err() != nil {
			break
		}
		if perr := parseDNSPerf(o, &s); perr != nil {
			s.Failed, s.Err = 1, fmt.Sprintf("%v; %v", err, perr)
			time.Sleep(200 * time.Millisecond)
		}
		out = append(out, s)
	}
	return out
}

// ecsOption is the hex of an EDNS Client Subnet option for an IPv4 /24
// (family 1, source 24, scope 0, three address bytes).
func ecsOption(cidr string) string {
	var a, b, c int
	fmt.Sscanf(cidr, "%d.%d.%d", &a, &b, &c)
	return fmt.Sprintf("00011800%02x%02x%02x", a, b, c)
}

var (
	dnsCompleted = regexp.MustCompile(`Queries completed:\s+(\d+)`)
	dnsLost      = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	dnsNoError   = regexp.MustCompile(`Response codes:.*?NOERROR (\d+)`)
	dnsLatency   = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+) \(min [0-9.]+, max ([0-9.]+)\)`)
)

// parseDNSPerf reads dnsperf's statistics: answered with NOERROR is ok;
// lost queries and other response codes failed.
func parseDNSPerf(out string, s *Slice) error {
	c, l := dnsCompleted.FindStringSubmatch(out), dnsLost.FindStringSubmatch(out)
	if c == nil || l == nil {
		return fmt.Errorf("dnsperf printed no statistics: %s", firstLine(out))
	}
	completed, _ := strconv.ParseInt(c[1], 10, 64)
	lost, _ := strconv.ParseInt(l[1], 10, 64)
	var noerr int64
	if m := dnsNoError.FindStringSubmatch(out); m != nil {
		noerr, _ = strconv.ParseInt(m[1], 10, 64)
	}
	s.OK = noerr
	s.Failed = lost + completed - noerr
	s.Lost = lost
	if m := dnsLatency.FindStringSubmatch(out); m != nil {
		mean, _ := strconv.ParseFloat(m[1], 64)
		mx, _ := strconv.ParseFloat(m[2], 64)
		s.Mean, s.Max = mean*1000, mx*1000
	}
	return nil
}

var pingLine = regexp.MustCompile(`^\[(\d+\.\d+)\] (.*)icmp_seq=(\d+)`)

// parsePing reads `ping -D -O` output: an echo is answered if a reply
// line names its sequence number, lost if only a "no answer yet" or an
// ICMP error does.
func parsePing(from, out string) []Ping {
	type seq struct {
		t  time.Time
		ok bool
	}
	seqs := map[int]*seq{}
	var order []int
	for _, l := range strings.Split(out, "\n") {
		m := pingLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ts, _ := strconv.ParseFloat(m[1], 64)
		n, _ := strconv.Atoi(m[3])
		t := time.Unix(0, int64(ts*1e9))
		s, ok := seqs[n]
		if !ok {
			s = &seq{t: t}
			seqs[n] = s
			order = append(order, n)
		}
		if strings.Contains(m[2], "bytes from") {
			s.ok, s.t = true, t
		}
	}
	out2 := make([]Ping, 0, len(order))
	for _, n := range order {
		out2 = append(out2, Ping{From: from, Time: seqs[n].t, OK: seqs[n].ok})
	}
	return out2
}

var revisionRe = regexp.MustCompile(`[Rr]evision (\d+)`)

// controlLoop is the operators' stream: every few seconds one of an
// apply of a one-line change, an invalidation, or a promote followed by
// its rollback.
func (r *runner) controlLoop(ctx context.Context) []Op {
	var ops []Op
	run := func(kind string, args ...string) Op {
		o := Op{Kind: kind, Start: now()}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := r.topo.CLI(cctx, args...)
		cancel()
		o.End = now()
		if err != nil {
			o.Err = fmt.Sprintf("%v: %s", err, strings.TrimSpace(out))
			return o
		}
		o.OK = true
		if m := revisionRe.FindStringSubmatch(out); m != nil {
			o.Revision, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if kind == "invalidate" {
			o.ID = strings.TrimSpace(out)
		}
		return o
	}
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return ops
		case <-time.After(3 * time.Second):
		}
		var batch []Op
		switch i % 3 {
		case 1:
			batch = append(batch, run("apply", "apply", "--param", fmt.Sprintf("shop.stamp=%d", i)))
		case 2:
			batch = append(batch, run("invalidate", "invalidate", "--no-wait", "static", "/static/app.css"))
		case 0:
			p := run("promote", "promote", "shop", "web", "green")
			batch = append(batch, p)
			if p.OK {
				batch = append(batch, run("rollback", "rollback"))
			}
		}
		for _, o := range batch {
			if ctx.Err() != nil && !o.OK {
				continue // cut short by the end of the phase
			}
			ops = append(ops, o)
		}
	}
}
