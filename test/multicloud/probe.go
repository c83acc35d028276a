package multicloud

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/intercloud/intercloud/controller"
)

// Response is what curl got, parsed.
type Response struct {
	Status int
	Header http.Header
	Body   string
}

// CacheStatus is the edge's Cache-Status member (RFC 9211).
func (r *Response) CacheStatus() string { return r.Header.Get("Cache-Status") }

// Hit reports whether the edge answered from its cache.
func (r *Response) Hit() bool { return strings.Contains(r.CacheStatus(), "; hit") }

// Get fetches http://host/path from inside ns, connecting to ip (what DNS
// said), with real curl.
func (t *Topology) Get(ctx context.Context, ns, ip, host, path string) (*Response, error) {
	out, err := t.Run(ctx, ns, "curl", "-sS", "-i", "--max-time", "5", "--resolve", host+":80:"+ip, "http://"+host+path)
	if err != nil {
		return nil, fmt.Errorf("curl %s via %s from %s: %v: %s", host+path, ip, ns, err, strings.TrimSpace(out))
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(out)), nil)
	if err != nil {
		return nil, fmt.Errorf("curl %s via %s from %s: parse: %v\n%s", host+path, ip, ns, err, out)
	}
	body, _ := io.ReadAll(resp.Body)
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// CurlCommand is the command a user pastes to do what Get does.
func (t *Topology) CurlCommand(ns, ip, host, path string) string {
	return fmt.Sprintf("%s curl -si --resolve %s:80:%s http://%s%s", t.Enter(ns), host, ip, host, path)
}

// Dig asks server for name's A records from inside ns and returns the
// addresses; subnet, when set, is sent as EDNS Client Subnet.
func (t *Topology) Dig(ctx context.Context, ns, server, name, subnet string) ([]string, string, error) {
	args := []string{"+norecurse", "+time=1", "+tries=2", "@" + server, name, "A"}
	if subnet != "" {
		args = append(args, "+subnet="+subnet)
	}
	out, err := t.Run(ctx, ns, "dig", args...)
	if err != nil {
		return nil, out, fmt.Errorf("dig @%s %s from %s: %v: %s", server, name, ns, err, out)
	}
	return answers(out, name), out, nil
}

// DigCommand is the command a user pastes to do what Dig does.
func (t *Topology) DigCommand(ns, server, name, subnet string) string {
	s := ""
	if subnet != "" {
		s = " +subnet=" + subnet
	}
	return fmt.Sprintf("%s dig +norecurse @%s %s A%s", t.Enter(ns), server, name, s)
}

// answers picks the A records of name from dig's answer section.
func answers(out, name string) []string {
	var as []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 5 && strings.TrimSuffix(f[0], ".") == name && f[2] == "IN" && f[3] == "A" {
			as = append(as, f[4])
		}
	}
	return as
}

var ecsRe = regexp.MustCompile(`CLIENT-SUBNET: ([0-9.]+/\d+)/(\d+)`)

// ECSScope returns the scope dig printed for the client subnet option.
func ECSScope(digOut string) (subnet, scope string, ok bool) {
	m := ecsRe.FindStringSubmatch(digOut)
	if m == nil {
		return "", "", false
	}
	return m[1], m[2], true
}

// KernelRoute is one line of `ip -4 route show`.
type KernelRoute struct {
	Dst, Via, Dev, Proto string
	Line                 string
}

// Routes lists the IPv4 routes of ns to dst-prefixes of the main table.
func (t *Topology) Routes(ctx context.Context, ns string) (map[string]KernelRoute, error) {
	out, err := t.Run(ctx, ns, "ip", "-4", "route", "show")
	if err != nil {
		return nil, err
	}
	rs := map[string]KernelRoute{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		r := KernelRoute{Dst: f[0], Line: l}
		for i := 1; i+1 < len(f); i++ {
			switch f[i] {
			case "via":
				r.Via = f[i+1]
			case "dev":
				r.Dev = f[i+1]
			case "proto":
				r.Proto = f[i+1]
			}
		}
		rs[r.Dst] = r
	}
	return rs, nil
}

// WantRoute is a route a namespace must have.
type WantRoute struct {
	NS, Dst, Via, Dev, Proto string
}

func (w WantRoute) String() string {
	return fmt.Sprintf("%s: %s via %s dev %s proto %s", w.NS, w.Dst, w.Via, w.Dev, w.Proto)
}

// CheckRoutes returns nil when every wanted route is in the kernel, and
// otherwise an error showing what is there instead.
func (t *Topology) CheckRoutes(ctx context.Context, want []WantRoute) error {
	var bad []string
	for _, w := range want {
		rs, err := t.Routes(ctx, w.NS)
		if err != nil {
			return err
		}
		got, ok := rs[w.Dst]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("want %s; no route", w))
		case got.Via != w.Via || got.Dev != w.Dev || (w.Proto != "" && got.Proto != w.Proto):
			bad = append(bad, fmt.Sprintf("want %s; have %q", w, got.Line))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("routes:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}

// Status is `intercloud status -j`.
func (t *Topology) Status(ctx context.Context) (*controller.Status, error) {
	out, err := t.CLI(ctx, "status", "-j")
	if err != nil {
		return nil, fmt.Errorf("%v: %s", err, out)
	}
	var st controller.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("status -j: %v\n%s", err, out)
	}
	return &st, nil
}

// StatusWait runs `intercloud status --wait`: every live node on the
// current revision. It returns the table it printed.
func (t *Topology) StatusWait(ctx context.Context) (string, error) {
	out, err := t.CLI(ctx, "status", "--wait", "--timeout", "60s")
	if err != nil {
		return out, fmt.Errorf("status --wait: %v\n%s", err, out)
	}
	return out, nil
}
