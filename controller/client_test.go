package controller

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/storetest"
)

// silent accepts connections and never answers; it closes them when the
// test ends.
func silent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// A controller that is not there, or that never answers, fails the call
// with a message naming it, what happened and how to start one.
func TestClientNamesAMissingController(t *testing.T) {
	closed := storetest.FreeAddr(t) // free a moment ago: nobody listens
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"closed port", closed, "did not answer (connection refused)"},
		{"never answers", silent(t), "did not answer in 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClient(tc.addr, "")
			c.Timeout = 200 * time.Millisecond
			_, err := c.Status(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, want := range []string{"controller at http://" + tc.addr + " ", tc.want, "is 'intercloud controller' running?", "intercloud controller -f DIR"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
		})
	}
}
