package vpn

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// sizeBind refuses batches of more than one datagram with err, as the
// kernel does for a GSO send whose segments exceed the path MTU.
type sizeBind struct {
	conn.Bind
	err  error
	sent int
}

func (b *sizeBind) Send(bufs [][]byte, _ conn.Endpoint) error {
	if len(bufs) > 1 {
		return b.err
	}
	b.sent += len(bufs)
	return nil
}

func TestSplitBindFallsBack(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		n        int
		wantErr  bool
		wantSent int
	}{
		{"EINVAL", &wrapErr{unix.EINVAL}, 3, false, 3},
		{"EMSGSIZE", &wrapErr{unix.EMSGSIZE}, 5, false, 5},
		{"other errors pass", &wrapErr{unix.ECONNREFUSED}, 2, true, 0},
		{"single datagram is not retried", &wrapErr{unix.EINVAL}, 1, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner := &sizeBind{err: tt.err}
			b := &splitBind{Bind: inner}
			err := b.Send(make([][]byte, tt.n), nil)
			if (err != nil) != tt.wantErr || inner.sent != tt.wantSent {
				t.Fatalf("err=%v sent=%d, want err=%v sent=%d", err, inner.sent, tt.wantErr, tt.wantSent)
			}
		})
	}
}

type wrapErr struct{ errno unix.Errno }

func (e *wrapErr) Error() string { return fmt.Sprintf("sendmmsg: %v", e.errno) }
func (e *wrapErr) Unwrap() error { return e.errno }
