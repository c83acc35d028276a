package origin

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// openBeneath opens name below dirfd the way the kernel guarantees it stays
// there: RESOLVE_BENEATH refuses "..", absolute symlinks and any symlink
// that leads out (EXDEV), so a symlink planted in content cannot expose
// the rest of the filesystem. O_NONBLOCK keeps a FIFO from hanging the
// request; it changes nothing for regular files.
func openBeneath(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// openVersion opens a version directory of the root as the anchor for
// openBeneath, so that a symlink in one version cannot reach into another.
// The version itself must be a real directory, not a link.
func openVersion(rootfd int, version string) (int, error) {
	for {
		fd, err := unix.Openat2(rootfd, version, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
		})
		if err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// errEscape marks a path whose resolution left the version directory.
var errEscape = errors.New("path escapes the version directory")

// classifyOpen maps openat2 errors to what the handler answers.
func classifyOpen(err error) error {
	switch {
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return errEscape
	default:
		return err
	}
}

// rawFile is an open regular file served by descriptor. It implements just
// enough (io.Reader and syscall.Conn) for net's sendfile path, without the
// allocation, fcntl and finalizer an *os.File costs on every request.
type rawFile int

func (f rawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f rawFile) SyscallConn() (syscall.RawConn, error) { return rawConn(f), nil }

func (f rawFile) seek(off int64) error {
	_, err := unix.Seek(int(f), off, io.SeekStart)
	return err
}

func (f rawFile) close() { unix.Close(int(f)) }

// rawConn runs callbacks on the descriptor; a regular file never blocks
// in the poller's sense, so each callback runs once.
type rawConn int

func (c rawConn) Control(fn func(uintptr)) error { fn(uintptr(c)); return nil }
func (c rawConn) Read(fn func(uintptr) bool) error {
	fn(uintptr(c))
	return nil
}
func (c rawConn) Write(fn func(uintptr) bool) error {
	fn(uintptr(c))
	return nil
}

// preadFull reads len(p) bytes at off, or fewer at end of file.
func preadFull(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func fstat(fd int) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func isRegular(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }
