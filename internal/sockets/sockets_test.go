package sockets

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 987409 2 0000000032ebd528 100 0 0 10 0
   1: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 12 2 0
   2: 00000000000000000000000001000000:1F91 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 55 1
   3: 0000000000000000FFFF00000100007F:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 56 1
`
	es, err := Parse(strings.NewReader(table))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{netip.MustParseAddrPort("127.0.0.1:8080"), TCPListen, 987409},
		{netip.MustParseAddrPort("0.0.0.0:53"), UDPUnconn, 12},
		{netip.MustParseAddrPort("[::1]:8081"), TCPListen, 55},
		{netip.MustParseAddrPort("127.0.0.1:8082"), TCPListen, 56}, // v4-mapped
	}
	if len(es) != len(want) {
		t.Fatalf("got %v", es)
	}
	for i := range want {
		if es[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, es[i], want[i])
		}
	}
	// Asked for one state, the lines of others are skipped on the state
	// field alone; the entries in that state are the same.
	listen, err := parse(strings.NewReader(table), TCPListen)
	if err != nil || len(listen) != 3 || listen[0] != want[0] || listen[1] != want[2] || listen[2] != want[3] {
		t.Errorf("listening sockets: %+v %v", listen, err)
	}
	for _, tc := range []struct {
		line string
		st   int
		ok   bool
	}{
		{"   0: 0100007F:1F90 00000000:0000 0A 0", TCPListen, true},
		{"1: a b 07", UDPUnconn, true},
		{"1: a b 0a", TCPListen, true},
		{"1: a b 0G", 0, false},
		{"1: a b 100", 0, false},
		{"1: a b", 0, false},
	} {
		if st, ok := hexByte(field([]byte(tc.line), 3)); st != tc.st || ok != tc.ok {
			t.Errorf("%q: state %d %v, want %d %v", tc.line, st, ok, tc.st, tc.ok)
		}
	}
	for _, bad := range []string{"h\n 0: 0100007F 00000000:0000 0A a b c d e 1\n", "h\n 0: 0100007F:1F90 x 0A a b c d e notanumber\n", "h\n 0: 01007F:1F90 x 0A a b c d e 1\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("no error for %q", bad)
		}
	}
}

// Our own listener is found by its inode; another socket on the port is
// named by its holder (this test process).
func TestCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := netip.MustParseAddrPort(ln.Addr().String())
	ino, err := Inode(ln.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Check("tcp", addr, TCPListen, ino); err != nil || got != "" {
		t.Fatalf("our own listener: %q, %v", got, err)
	}
	got, err := Check("tcp", addr, TCPListen, ino+1<<40)
	if err != nil || !strings.HasPrefix(got, "held by pid ") || !strings.Contains(got, "socket") {
		t.Fatalf("another socket: %q, %v", got, err)
	}
	ln.Close()
	if got, err := Check("tcp", addr, TCPListen, ino); err != nil || got != "not bound" {
		t.Fatalf("closed: %q, %v", got, err)
	}
}

// The kernel writes these tables, but a parser must not crash on any input.
func FuzzParse(f *testing.F) {
	f.Add("h\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 987409 2\n")
	f.Add("h\n 2: 00000000000000000000000001000000:1F91 0:0 0A a b c d e 55 1\n")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Parse(strings.NewReader(s))
	})
}
