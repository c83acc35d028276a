package netns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// markerEnv marks every process the harness starts (and, by inheritance,
// their children): "<owner pid>.<owner start time>:<namespace>".
const markerEnv = "INTERCLOUD_NETNS_OWNER"

// ownerMark identifies this test process; the start time guards against a
// recycled pid.
func ownerMark() string {
	st, _ := startTime("/proc/self")
	return strconv.Itoa(os.Getpid()) + "." + st
}

// Sweep kills processes left by harnesses of runs that are gone: a marked
// process whose owner (pid and start time) no longer runs was orphaned by a
// crash. Killing the holders and everything started inside
// their namespaces frees the namespaces and their links. Processes of runs
// still alive (other test binaries running in parallel) are left alone. It
// returns how many processes it killed.
func Sweep() (int, error) {
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return 0, err
	}
	var errs []error
	killed := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == os.Getpid() {
			continue
		}
		owner, ownerStart, ok := marker(d)
		if !ok {
			continue
		}
		if st, ok := startTime("/proc/" + owner); ok && st == ownerStart {
			continue // its run is alive
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("kill stale %d: %w", pid, err))
			continue
		}
		killed++
	}
	return killed, errors.Join(errs...)
}

func marker(dir string) (owner, start string, ok bool) {
	env, err := os.ReadFile(filepath.Join(dir, "environ"))
	if err != nil {
		return "", "", false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		v, found := bytes.CutPrefix(kv, []byte(markerEnv+"="))
		if !found {
			continue
		}
		o, _, _ := strings.Cut(string(v), ":")
		owner, start, ok = strings.Cut(o, ".")
		if _, err := strconv.Atoi(owner); err != nil {
			return "", "", false
		}
		return owner, start, ok
	}
	return "", "", false
}

// startTime is field 22 of /proc/<pid>/stat, in clock ticks since boot.
func startTime(dir string) (string, bool) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return "", false
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	// After ')': state is field 3, so starttime (field 22) is index 19.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return "", false
	}
	return f[19], true
}
