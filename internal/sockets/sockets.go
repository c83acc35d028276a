// Package sockets finds who holds a local port: the kernel's socket tables
// (/proc/net/tcp, tcp6, udp, udp6 of the caller's network namespace) and
// the descriptors of every process (/proc/PID/fd). Drift checks use it to
// tell "our listener is the one bound" from "closed" and "taken by another
// process".
package sockets

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Entry is one socket of a table.
type Entry struct {
	Local netip.AddrPort
	// State is the kernel's: 0x0A is TCP LISTEN, 0x07 an unconnected UDP
	// socket.
	State int
	Inode uint64
}

// Kernel socket states this package looks for.
const (
	TCPListen = 0x0A
	UDPUnconn = 0x07
)

// Bound lists the sockets of proto ("tcp" or "udp") bound to port, in
// state, IPv4 and IPv6.
func Bound(proto string, port uint16, state int) ([]Entry, error) {
	if proto != "tcp" && proto != "udp" {
		return nil, fmt.Errorf("sockets: protocol %q", proto)
	}
	var out []Entry
	for _, f := range []string{proto, proto + "6"} {
		file, err := os.Open(filepath.Join("/proc/net", f))
		if errors.Is(err, os.ErrNotExist) {
			continue // no IPv6 in this kernel
		}
		if err != nil {
			return nil, fmt.Errorf("sockets: %w", err)
		}
		// An edge holds tens of thousands of connections: only the
		// state asked for is parsed further.
		es, err := parse(file, state)
		file.Close()
		if err != nil {
			return nil, fmt.Errorf("sockets: /proc/net/%s: %w", f, err)
		}
		for _, e := range es {
			if e.Local.Port() == port && e.State == state {
				out = append(out, e)
			}
		}
	}
	return out, nil
}

// Parse reads a /proc/net/{tcp,udp}[6] table.
func Parse(r io.Reader) ([]Entry, error) { return parse(r, -1) }

// parse reads the entries in state (-1: every state). An edge holds tens
// of thousands of connections, and a process of many nodes (`intercloud
// up`) checks its listeners together: a line in another state is skipped
// on its state field alone, without splitting it.
func parse(r io.Reader, state int) ([]Entry, error) {
	var out []Entry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		line := sc.Bytes()
		if state >= 0 {
			if st, ok := hexByte(field(line, 3)); ok && st != state {
				continue
			}
		}
		f := strings.Fields(string(line))
		if len(f) < 10 {
			continue
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("state %q: %w", f[3], err)
		}
		if state >= 0 && int(st) != state {
			continue
		}
		local, err := parseAddr(f[1])
		if err != nil {
			return nil, err
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("inode %q: %w", f[9], err)
		}
		out = append(out, Entry{Local: local, State: int(st), Inode: ino})
	}
	return out, sc.Err()
}

// hexByte reads a state field ("0A"); false for anything else.
func hexByte(f []byte, ok bool) (int, bool) {
	if !ok || len(f) != 2 {
		return 0, false
	}
	v := 0
	for _, c := range f {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | int(c-'0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | int(c-'A'+10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | int(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// field is the n-th (from 0) field of line, separated by spaces.
func field(line []byte, n int) ([]byte, bool) {
	i := 0
	for k := 0; ; k++ {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' {
			j++
		}
		if i == j {
			return nil, false
		}
		if k == n {
			return line[i:j], true
		}
		i = j
	}
}

// parseAddr reads "0100007F:1F90": the address as the kernel's 32-bit
// words in host (little-endian) order, the port big-endian hex.
func parseAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(p, 16, 16)
	if !ok || err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	b, err := hex.DecodeString(a)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q", s)
	}
	for i := 0; i < len(b); i += 4 {
		binary.BigEndian.PutUint32(b[i:], binary.LittleEndian.Uint32(b[i:]))
	}
	ip, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// Inode is the socket inode of c's descriptor.
func Inode(c syscall.Conn) (uint64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil {
		return 0, err
	}
	if serr != nil {
		return 0, fmt.Errorf("sockets: fstat: %w", serr)
	}
	return st.Ino, nil
}

// Covers reports whether a socket bound to b receives what is sent to a:
// the same port and address, or a wildcard address of the same family.
func Covers(b, a netip.AddrPort) bool {
	if b.Port() != a.Port() {
		return false
	}
	return b.Addr() == a.Addr() || (b.Addr().IsUnspecified() && b.Addr().Is4() == a.Addr().Is4()) ||
		(b.Addr() == netip.IPv6Unspecified())
}

// Holder names the process holding the socket with inode ("pid 123
// (nginx)"), or "" when no process of this host's /proc shows it.
func Holder(inode uint64) string {
	want := "socket:[" + strconv.FormatUint(inode, 10) + "]"
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == want {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return fmt.Sprintf("pid %d (%s)", pid, strings.TrimSpace(string(comm)))
			}
		}
	}
	return ""
}

// Check says whether ours (the inode of our socket bound to addr) is what
// the kernel has bound there in state: "" when it is, else what is there
// instead ("not bound", "held by pid 123 (nginx), socket 4567").
func Check(proto string, addr netip.AddrPort, state int, ours uint64) (string, error) {
	es, err := Bound(proto, addr.Port(), state)
	if err != nil {
		return "", err
	}
	var others []string
	found := false
	for _, e := range es {
		switch {
		case !Covers(e.Local, addr) && !Covers(addr, e.Local):
		case e.Inode == ours:
			found = true
		default:
			who := Holder(e.Inode)
			if who == "" {
				who = "an unknown process"
			}
			others = append(others, fmt.Sprintf("%s, socket %d on %s", who, e.Inode, e.Local))
		}
	}
	switch {
	case found && len(others) == 0:
		return "", nil
	case found:
		return "shared with " + strings.Join(others, "; "), nil
	case len(others) > 0:
		return "held by " + strings.Join(others, "; "), nil
	}
	return "not bound", nil
}
