package dns

import (
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/test/testenv"
)

// dig runs the real dig against the server and returns its output.
func dig(t *testing.T, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	all := append([]string{"@" + host, "-p", port, "+time=2", "+tries=1", "+norecurse"}, args...)
	out, err := exec.Command("dig", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("dig %v: %v\n%s", all, err, out)
	}
	return string(out)
}

var answerLine = regexp.MustCompile(`(?m)^(\S+)\s+(\d+)\s+IN\s+(A|AAAA|CNAME|SOA)\s+(.*)$`)

// section returns the records dig printed under ";; NAME SECTION:".
func section(out, name string) []string {
	i := strings.Index(out, ";; "+name+" SECTION:\n")
	if i < 0 {
		return nil
	}
	rest := out[i+len(name)+13:]
	if j := strings.Index(rest, "\n\n"); j >= 0 {
		rest = rest[:j]
	}
	var recs []string
	for _, m := range answerLine.FindAllStringSubmatch(rest, -1) {
		recs = append(recs, strings.ToLower(m[1])+" "+m[3]+" "+m[4])
	}
	slices.Sort(recs)
	return recs
}

func flags(out string) []string {
	m := regexp.MustCompile(`;; flags: ([a-z ]+);`).FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	return strings.Fields(m[1])
}

func TestDig(t *testing.T) {
	testenv.NeedTool(t, "dig", "dnsutils")
	snap := testSnapshot(testGeoIP(t))
	snap.Site.DNS.MaxAnswers = 40
	var pins []string
	for i := range 40 {
		name := fmt.Sprintf("big-%d", i)
		pins = append(pins, name)
		snap.Site.Nodes = append(snap.Site.Nodes, edgeNode(name, "big", fmt.Sprintf("2001:db8:2::%x", i+1), loc("BR", -23.5, -46.6)))
	}
	snap.Distributions = append(snap.Distributions, config.Distribution{Name: "big", Spec: config.Spec{Edges: pins}})
	_, addr := startServer(t, snap)

	check := func(t *testing.T, out string, status string, wantFlags []string, answer []string) {
		t.Helper()
		if !strings.Contains(out, "status: "+status) {
			t.Errorf("want status %s:\n%s", status, out)
		}
		f := flags(out)
		for _, w := range wantFlags {
			if !slices.Contains(f, w) {
				t.Errorf("flags %v lack %s", f, w)
			}
		}
		if slices.Contains(f, "ra") {
			t.Errorf("RA set: %v", f)
		}
		if answer != nil {
			if got := section(out, "ANSWER"); !slices.Equal(got, sorted(answer)) {
				t.Errorf("answer %q, want %q\n%s", got, sorted(answer), out)
			}
		}
	}
	t.Run("udp", func(t *testing.T) {
		out := dig(t, addr, "shop.cdn.example.test", "A")
		check(t, out, "NOERROR", []string{"qr", "aa"}, shopKR)
	})
	t.Run("tcp", func(t *testing.T) {
		out := dig(t, addr, "+tcp", "www.cdn.example.test", "A")
		check(t, out, "NOERROR", []string{"qr", "aa"},
			append([]string{"www.cdn.example.test. CNAME shop.cdn.example.test."}, shopKR...))
	})
	t.Run("ecs", func(t *testing.T) {
		out := dig(t, addr, "+subnet=1.0.0.0/24", "shop.cdn.example.test", "A")
		check(t, out, "NOERROR", []string{"qr", "aa"}, shopJP)
		if !strings.Contains(out, "CLIENT-SUBNET: 1.0.0.0/24/24") {
			t.Errorf("no ECS scope /24 in:\n%s", out)
		}
	})
	t.Run("nxdomain", func(t *testing.T) {
		out := dig(t, addr, "nope.cdn.example.test", "A")
		check(t, out, "NXDOMAIN", []string{"qr", "aa"}, []string{})
		if got := section(out, "AUTHORITY"); len(got) != 1 || !strings.HasPrefix(got[0], "cdn.example.test. SOA") {
			t.Errorf("authority %v", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		out := dig(t, addr, "shop.example.test", "A")
		check(t, out, "REFUSED", []string{"qr"}, []string{})
		if slices.Contains(flags(out), "aa") {
			t.Errorf("AA on a refusal")
		}
	})
	t.Run("truncated at bufsize 512", func(t *testing.T) {
		out := dig(t, addr, "+ignore", "+bufsize=512", "big.cdn.example.test", "AAAA")
		check(t, out, "NOERROR", []string{"qr", "aa", "tc"}, []string{})
	})
	t.Run("truncated then retried over tcp", func(t *testing.T) {
		out := dig(t, addr, "+bufsize=512", "big.cdn.example.test", "AAAA")
		if !strings.Contains(out, "Truncated, retrying in TCP mode") {
			t.Errorf("dig did not see TC:\n%s", out)
		}
		if n := strings.Count(out, "\tAAAA\t2001:db8:2::"); n != 40 {
			t.Errorf("%d AAAA records over TCP, want 40", n)
		}
	})
	t.Run("any", func(t *testing.T) {
		out := dig(t, addr, "shop.cdn.example.test", "ANY")
		check(t, out, "NOERROR", []string{"qr", "aa"}, shopKR)
	})
}
