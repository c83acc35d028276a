package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/packet/mrt"

	"github.com/intercloud/intercloud/test/netns"
)

// gobgpVersion is the module version the gateway embeds; the standalone
// peer is built from the same.
const gobgpVersion = "v4.8.0"

// gobgpBinaries finds gobgpd and gobgp ($GOBGPD and $GOBGP, else a cache
// directory, else builds them there from the module proxy once).
func gobgpBinaries(b *testing.B) (gobgpd, cli string, ok bool) {
	if d, c := os.Getenv("GOBGPD"), os.Getenv("GOBGP"); d != "" && c != "" {
		return d, c, true
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "intercloud-bench", "gobgp-"+gobgpVersion)
	gobgpd, cli = filepath.Join(dir, "gobgpd"), filepath.Join(dir, "gobgp")
	if _, err := os.Stat(gobgpd); err == nil {
		if _, err := os.Stat(cli); err == nil {
			return gobgpd, cli, true
		}
	}
	b.Logf("building gobgpd and gobgp %s into %s (once)", gobgpVersion, dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Logf("gobgpd: %v", err)
		return "", "", false
	}
	_ = os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gobgpbench\n\ngo 1.26\n"), 0o644)
	for _, args := range [][]string{
		{"get", "github.com/osrg/gobgp/v4/cmd/gobgpd@" + gobgpVersion, "github.com/osrg/gobgp/v4/cmd/gobgp@" + gobgpVersion},
		{"build", "-o", gobgpd, "github.com/osrg/gobgp/v4/cmd/gobgpd"},
		{"build", "-o", cli, "github.com/osrg/gobgp/v4/cmd/gobgp"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Logf("gobgpd not available (go %s: %v):\n%s", args[0], err, out)
			return "", "", false
		}
	}
	return gobgpd, cli, true
}

// writeMRT writes a TABLE_DUMPv2 file with one path per prefix, for
// `gobgp mrt inject global`.
func writeMRT(b *testing.B, file string, ps []netip.Prefix, self netip.Addr, asn uint32) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	write := func(st mrt.MRTSubTypeTableDumpv2, body mrt.Body) {
		m, err := mrt.NewMRTMessage(now, mrt.TABLE_DUMPv2, st, body)
		if err != nil {
			b.Fatal(err)
		}
		buf, err := m.Serialize()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	write(mrt.PEER_INDEX_TABLE, mrt.NewPeerIndexTable(self, "bench", []*mrt.Peer{mrt.NewPeer(self, self, asn, true)}))
	nh, _ := gobgp.NewPathAttributeNextHop(self)
	attrs := []gobgp.PathAttributeInterface{
		gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		gobgp.NewPathAttributeAsPath(nil),
		nh,
	}
	for i, p := range ps {
		nlri, _ := gobgp.NewIPAddrPrefix(p)
		e := mrt.NewRibEntry(0, uint32(now.Unix()), 0, attrs, false)
		write(mrt.RIB_IPV4_UNICAST, mrt.NewRib(uint32(i), gobgp.RF_IPv4_UC, nlri, []*mrt.RibEntry{e}))
	}
}

// startGobgpd runs the standalone daemon the way an operator would: start
// it, load the table with `gobgp mrt inject`, then add the neighbor (our
// gateway also loads its routes before its peers). It returns a stop func.
func startGobgpd(b *testing.B, ns *netns.Namespace, gobgpd, cli, mrtFile string, self, peer netip.Addr, asn, peerASN uint32) func() {
	b.Helper()
	dir := b.TempDir()
	conf := filepath.Join(dir, "gobgpd.toml")
	toml := fmt.Sprintf("[global.config]\n  as = %d\n  router-id = %q\n  port = -1\n", asn, self)
	if err := os.WriteFile(conf, []byte(toml), 0o644); err != nil {
		b.Fatal(err)
	}
	p := ns.Start(gobgpd, "-f", conf, "-p", "--pprof-disable", "--api-hosts", "127.0.0.1:50051", "-l", "warn")
	ctx := context.Background()
	cliArgs := func(args ...string) []string { return append([]string{"-u", "127.0.0.1", "-p", "50051"}, args...) }
	waitFor(b, "gobgpd API", 30*time.Second, 10*time.Millisecond, func() bool {
		_, err := ns.Run(ctx, cli, cliArgs("global")...)
		return err == nil
	})
	if out, err := ns.Run(ctx, cli, cliArgs("mrt", "inject", "global", mrtFile)...); err != nil {
		b.Fatalf("gobgp mrt inject: %v\n%s", err, out)
	}
	if out, err := ns.Run(ctx, cli, cliArgs("neighbor", "add", peer.String(), "as", fmt.Sprint(peerASN))...); err != nil {
		b.Fatalf("gobgp neighbor add: %v\n%s", err, out)
	}
	return func() {
		p.Stop()
		if b.Failed() {
			b.Logf("gobgpd:\n%s", lastLines(p.Output(), 20))
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
