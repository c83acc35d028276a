package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/intercloud/intercloud/bgp/bgptest"
	"github.com/intercloud/intercloud/test/multicloud"
	"github.com/intercloud/intercloud/test/netns"
)

// canary is the path smuggled requests ask for: no client asks for it, so
// an edge that logs it, or a response to it, is a framing disagreement.
const canary = "/soak-smuggled-canary"

// badHelper is the helper process that sends malformed input from inside
// a client's namespace until SIGTERM, then prints its counts as JSON.
const badHelper = "soak-bad-input"

// bgpHelper is the helper process that plays a hostile BGP speaker:
// `bgp GATEWAY SOURCE` opens sessions to the gateway from SOURCE and sends
// one malformed message of bgptest.Hostile in each, until SIGTERM; then it
// prints its counts.
const bgpHelper = "soak-bgp-hostile"

// Where the hostile speaker lives: on the internet segment, a neighbor of
// tokyo-gw in the soak's site.
const (
	hostileNS   = "bgp-hostile"
	hostileAddr = "172.30.0.20"
)

func init() {
	netns.RegisterHelper(badHelper, runBad)
	netns.RegisterHelper(bgpHelper, runHostileBGP)
}

// bgpCounts is what the hostile speaker prints when it stops.
type bgpCounts struct {
	Sessions int64 `json:"sessions"` // established, one message each
	Reset    int64 `json:"reset"`    // of them, closed by the gateway after the message
	Refused  int64 `json:"refused"`  // attempts the gateway did not establish
}

func runHostileBGP(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bgp GATEWAY SOURCE")
		return 2
	}
	src := netip.MustParseAddr(args[1])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	var c bgpCounts
	for i := 0; ; i++ {
		select {
		case <-stop:
			b, _ := json.Marshal(c)
			fmt.Printf("BGP %s\n", b)
			return 0
		default:
		}
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		conn, err := d.Dial("tcp", args[0]+":179")
		if err == nil {
			err = bgptest.Establish(conn, 65090, src)
		}
		if err != nil {
			c.Refused++
			if conn != nil {
				conn.Close()
			}
			time.Sleep(time.Second)
			continue
		}
		c.Sessions++
		msg := bgptest.Hostile[i%len(bgptest.Hostile)].Msg
		_, _ = conn.Write(msg)
		// The gateway answers with a NOTIFICATION and a close, or keeps
		// the session (treat-as-withdraw): either way this one ends here.
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := io.Copy(io.Discard, conn); err == nil {
			c.Reset++
		}
		conn.Close()
		time.Sleep(500 * time.Millisecond)
	}
}

// smuggle are the request-smuggling and malformed shapes, each sent on a
// connection of its own. %s is the canary path, %h the host.
var smuggle = []struct{ name, req string }{
	{"CL.TE", "POST / HTTP/1.1\r\nHost: %h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE.CL", "POST / HTTP/1.1\r\nHost: %h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n2c\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n\r\n0\r\n\r\n"},
	{"duplicate CL", "POST / HTTP/1.1\r\nHost: %h\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE xchunked", "POST / HTTP/1.1\r\nHost: %h\r\nContent-Length: 4\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE space colon", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE twice", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE tab", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding:\tchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"TE obs-fold", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"chunk size zz", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\nGET %s HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"chunk size overflow", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nabc\r\n0\r\n\r\n"},
	{"chunk size negative", "POST / HTTP/1.1\r\nHost: %h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n"},
	{"bare LF", "GET / HTTP/1.1\nHost: %h\n\n"},
	{"oversized header", "GET / HTTP/1.1\r\nHost: %h\r\nX-Big: " + strings.Repeat("a", 128<<10) + "\r\n\r\n"},
	{"oversized URI", "GET /" + strings.Repeat("u", 64<<10) + " HTTP/1.1\r\nHost: %h\r\n\r\n"},
	{"garbage", "\x00\x01\x02\xff GARBAGE\r\n\r\n"},
}

// badCounts is what the helper prints when it stops.
type badCounts struct {
	Shapes       map[string][2]int64 `json:"shapes"` // sent, refused (4xx/5xx or closed without an answer)
	Smuggled     int64               `json:"smuggled"`
	Idle         int64               `json:"idle"`         // idle connections opened
	IdleClosed   int64               `json:"idleClosed"`   // of them, closed by the edge
	Slowloris    int64               `json:"slowloris"`    // slow connections opened
	SlowClosed   int64               `json:"slowClosed"`   // of them, closed by the edge
	DNSSent      int64               `json:"dnsSent"`      // malformed DNS packets
	DNSAnswered  int64               `json:"dnsAnswered"`  // answered (FORMERR and the like)
	Unexpected   []string            `json:"unexpected"`   // responses that should not be
	Dropped      int64               `json:"dropped"`      // idle connections that could not be opened
	DialFailures int64               `json:"dialFailures"` // shapes whose connection failed
}

func runBad(args []string) int {
	fs := flag.NewFlagSet("bad", flag.ContinueOnError)
	edges := fs.String("http", "", "edge addresses, comma-separated")
	dnsAddr := fs.String("dns", "", "DNS server address")
	idle := fs.Int("idle", 0, "idle connections to hold, spread over the edges")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	raiseNoFile()
	var c badCounts
	c.Shapes = map[string][2]int64{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		close(stop)
	}()
	targets := strings.Split(*edges, ",")
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	// The shapes, in turn, about 20 a second.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stopped(); i++ {
			sh := smuggle[i%len(smuggle)]
			req := strings.ReplaceAll(strings.ReplaceAll(sh.req, "%s", canary), "%h", multicloud.ShopDomain)
			refused, statuses, err := sendShape(targets[i%len(targets)], req)
			answers := len(statuses)
			mu.Lock()
			v := c.Shapes[sh.name]
			v[0]++
			if refused {
				v[1]++
			}
			c.Shapes[sh.name] = v
			if err != nil {
				c.DialFailures++
			}
			if answers > 1 {
				c.Smuggled++
				if u := fmt.Sprintf("%s: answered %v on one connection (the smuggled request too)", sh.name, statuses); !slices.Contains(c.Unexpected, u) {
					c.Unexpected = append(c.Unexpected, u)
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()
	// Idle connections: opened and held; one the edge closes is counted
	// and opened again.
	var idleN, idleClosed, dropped, slowN, slowClosed atomic.Int64
	hold := func(addr string, slow bool) {
		defer wg.Done()
		for !stopped() {
			conn, err := net.DialTimeout("tcp", addr+":80", 2*time.Second)
			if err != nil {
				dropped.Add(1)
				select {
				case <-stop:
				case <-time.After(time.Second):
				}
				continue
			}
			if slow {
				slowN.Add(1)
				_, err = conn.Write([]byte("GET / HTTP/1.1\r\nHost: " + multicloud.ShopDomain + "\r\n"))
			} else {
				idleN.Add(1)
			}
			closed := make(chan struct{})
			go func() { _, _ = conn.Read(make([]byte, 4096)); close(closed) }()
			for err == nil {
				select {
				case <-stop:
					conn.Close()
					return
				case <-closed:
					err = net.ErrClosed
				case <-time.After(5 * time.Second):
					if slow {
						_, err = conn.Write([]byte("X-Slow: x\r\n"))
					}
				}
			}
			conn.Close()
			if slow {
				slowClosed.Add(1)
			} else {
				idleClosed.Add(1)
			}
		}
	}
	for i := range *idle {
		wg.Add(1)
		go hold(targets[i%len(targets)], false)
	}
	for i := range 50 {
		wg.Add(1)
		go hold(targets[i%len(targets)], true)
	}
	// Malformed DNS, about 100 packets a second.
	if *dnsAddr != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", *dnsAddr+":53")
			if err != nil {
				return
			}
			defer conn.Close()
			go func() {
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						if errors, ok := err.(net.Error); ok && errors.Timeout() {
							continue
						}
						if stopped() {
							return
						}
						continue
					}
					mu.Lock()
					c.DNSAnswered++
					mu.Unlock()
				}
			}()
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; !stopped(); i++ {
				_, _ = conn.Write(badDNS(rng, i))
				mu.Lock()
				c.DNSSent++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	<-stop
	wg.Wait()
	mu.Lock()
	c.Idle, c.IdleClosed, c.Dropped, c.Slowloris, c.SlowClosed = idleN.Load(), idleClosed.Load(), dropped.Load(), slowN.Load(), slowClosed.Load()
	b, _ := json.Marshal(c)
	mu.Unlock()
	fmt.Printf("BAD %s\n", b)
	return 0
}

// sendShape sends one malformed request and reads what comes back until
// the edge closes or two seconds pass. refused: an error status or a
// close without an answer; statuses: the status of each response.
func sendShape(addr, req string) (refused bool, statuses []int, err error) {
	conn, err := net.DialTimeout("tcp", addr+":80", 2*time.Second)
	if err != nil {
		return true, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return true, nil, nil // closed while we wrote: refused
	}
	br := bufio.NewReader(conn)
	for {
		l, err := br.ReadString('\n')
		if strings.HasPrefix(l, "HTTP/1.") {
			var st int
			fmt.Sscanf(l, "HTTP/1.%d %d", new(int), &st)
			statuses = append(statuses, st)
		}
		if err != nil {
			break
		}
	}
	return len(statuses) == 0 || statuses[0] >= 400, statuses, nil
}

// badDNS makes malformed DNS messages of a few shapes: random bytes, a
// header alone, counts that promise more than is there, a compression
// pointer to itself, a label longer than 63.
func badDNS(rng *rand.Rand, i int) []byte {
	id := []byte{byte(rng.IntN(256)), byte(rng.IntN(256))}
	switch i % 5 {
	case 0:
		b := make([]byte, rng.IntN(600))
		for j := range b {
			b[j] = byte(rng.IntN(256))
		}
		return b
	case 1:
		return append(id, 0, 0, 0, 1) // truncated header
	case 2:
		return append(id, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 3, 'c', 'd', 'n', 0, 0, 1, 0, 1)
	case 3:
		return append(id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1) // pointer to itself
	default:
		return append(append(append(id, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x7f), make([]byte, 10)...), 0, 0, 1, 0, 1)
	}
}

// raiseNoFile lifts the soft descriptor limit to the hard one, for the
// idle connections.
func raiseNoFile() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// badInput is the malformed input of a phase: a sender per cloud and a
// WireGuard peer with a key the gateways do not know.
type badInput struct {
	r       *runner
	senders []*netns.Proc
	bgp     *netns.Proc
	wg      *netns.Proc
	wgIf    string
}

func (r *runner) startBadInput(ctx context.Context) *badInput {
	b := &badInput{r: r}
	idle := r.opts.IdleConns / 2
	for _, s := range []struct{ ns, edges, dns string }{
		{multicloud.NSKR, Edges["seoul-edge-1"] + "," + Edges["seoul-edge-2"], SeoulDNS},
		{multicloud.NSJP, Edges["tokyo-edge-1"] + "," + Edges["tokyo-edge-2"], TokyoDNS},
	} {
		b.senders = append(b.senders, r.topo.NS(s.ns).StartHelper(badHelper, "-http", s.edges, "-dns", s.dns, "-idle", fmt.Sprint(idle)))
	}
	b.bgp = r.hostile.StartHelper(bgpHelper, "172.30.0.2", hostileAddr)
	b.startWrongKeyPeer(ctx)
	return b
}

// startWrongKeyPeer runs wireguard-go on-premises with a fresh key,
// pointed at seoul's gateway as if it were tokyo's peer: its handshakes
// must never complete, and the real tunnel must not care.
func (b *badInput) startWrongKeyPeer(ctx context.Context) {
	t := b.r.topo
	b.wgIf = t.Harness().Name("bad")
	b.wg = t.NS(multicloud.NSOnPrem).StartEnv([]string{"WG_PROCESS_FOREGROUND=1"}, "wireguard-go", "-f", b.wgIf)
	key, err := t.Run(ctx, multicloud.NSOnPrem, "wg", "genkey")
	if err != nil {
		return
	}
	keyFile := filepath.Join(t.Dir, "bad-peer.key")
	_ = writeFile(keyFile, key)
	pub := ""
	for _, l := range t.Site.Site.Links {
		if l.Kind == "vpn" && l.A.Node == "seoul-gw" {
			pub = l.A.PublicKey
		}
	}
	for range 50 {
		if _, err := os.Stat("/var/run/wireguard/" + b.wgIf + ".sock"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, cmd := range [][]string{
		{"wg", "set", b.wgIf, "private-key", keyFile, "peer", pub, "endpoint", "172.30.0.1:51820", "allowed-ips", "100.99.0.1/32", "persistent-keepalive", "1"},
		{"ip", "addr", "add", "100.99.0.2/32", "peer", "100.99.0.1/32", "dev", b.wgIf},
		{"ip", "link", "set", b.wgIf, "up"},
	} {
		if out, err := t.Run(ctx, multicloud.NSOnPrem, cmd[0], cmd[1:]...); err != nil {
			b.r.logf("soak: wrong-key peer: %s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
}

// stop ends the senders and says what they did.
func (b *badInput) stop(ctx context.Context) (out []BadInput, notes, violations []string) {
	for i, s := range b.senders {
		s.Stop()
		from := []string{multicloud.NSKR, multicloud.NSJP}[i]
		var c badCounts
		line := ""
		for _, l := range strings.Split(s.Output(), "\n") {
			if v, ok := strings.CutPrefix(l, "BAD "); ok {
				line = v
			}
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			notes = append(notes, fmt.Sprintf("bad input from %s: no counts: %s", from, tailLines(s.Output(), 5)))
			continue
		}
		var sent, refused int64
		for _, v := range c.Shapes {
			sent += v[0]
			refused += v[1]
		}
		out = append(out,
			BadInput{Kind: "HTTP smuggling shapes", Target: from + " edges", Sent: sent, Refused: refused, Note: fmt.Sprintf("%d shapes; %d connections answered twice", len(c.Shapes), c.Smuggled)},
			BadInput{Kind: "idle connections", Target: from + " edges", Sent: c.Idle, Refused: c.IdleClosed, Note: fmt.Sprintf("%d could not be opened", c.Dropped)},
			BadInput{Kind: "slowloris", Target: from + " edges", Sent: c.Slowloris, Refused: c.SlowClosed},
			BadInput{Kind: "malformed DNS", Target: from + " DNS", Sent: c.DNSSent, Refused: c.DNSAnswered, Note: "refused = answered (FORMERR and the like)"},
		)
		for _, u := range c.Unexpected {
			notes = append(notes, "bad input from "+from+": "+u)
		}
		if c.Smuggled > 0 {
			violations = append(violations, fmt.Sprintf("bad input from %s: %d smuggled requests were answered as requests of their own", from, c.Smuggled))
		}
	}
	if b.bgp != nil {
		b.bgp.Stop()
		var c bgpCounts
		line := ""
		for _, l := range strings.Split(b.bgp.Output(), "\n") {
			if v, ok := strings.CutPrefix(l, "BGP "); ok {
				line = v
			}
		}
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			notes = append(notes, "hostile BGP speaker: no counts: "+tailLines(b.bgp.Output(), 5))
		} else {
			out = append(out, BadInput{Kind: "malformed BGP UPDATEs", Target: "tokyo-gw", Sent: c.Sessions, Refused: c.Reset,
				Note: fmt.Sprintf("one of %d shapes per established session; %d attempts not established (the gateway's idle hold after a reset)", len(bgptest.Hostile), c.Refused)})
		}
	}
	if b.wg != nil {
		hs, err := b.r.topo.Run(ctx, multicloud.NSOnPrem, "wg", "show", b.wgIf, "latest-handshakes")
		f := strings.Fields(hs)
		bi := BadInput{Kind: "WireGuard wrong key", Target: "seoul-gw"}
		switch {
		case err != nil || len(f) != 2:
			bi.Note = fmt.Sprintf("could not read the handshake: %v %q", err, hs)
		case f[1] == "0":
			bi.Note = "no handshake ever completed"
		default:
			bi.Note = "a handshake completed"
			violations = append(violations, "seoul-gw completed a WireGuard handshake with a key it does not know")
		}
		if tr, err := b.r.topo.Run(ctx, multicloud.NSOnPrem, "wg", "show", b.wgIf, "transfer"); err == nil {
			if f := strings.Fields(tr); len(f) == 3 {
				fmt.Sscan(f[2], &bi.Sent)
				var rx int64
				fmt.Sscan(f[1], &rx)
				bi.Note += fmt.Sprintf("; %d bytes sent, %d received", bi.Sent, rx)
			}
		}
		out = append(out, bi)
		b.wg.Stop()
	}
	return out, notes, violations
}
