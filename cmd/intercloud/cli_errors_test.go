package main

import (
	"context"
	"net"
	"strings"
	"testing"
)

// Commands that talk to a controller nobody runs say which one they tried
// and how to start it, instead of a bare network error.
func TestCommandsNameAMissingController(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	t.Setenv("INTERCLOUD_TOKEN", "x")
	for _, args := range [][]string{
		{"status"}, {"history"}, {"rollback"}, {"invalidations"}, {"rollout", "status"},
	} {
		c := commands[args[0]]
		err := c.run(context.Background(), append(args[1:], "--controller", "http://"+addr))
		if err == nil {
			t.Errorf("%s: no error", args)
			continue
		}
		msg := err.Error()
		for _, want := range []string{"controller at http://" + addr, "connection refused", "is 'intercloud controller' running?"} {
			if !strings.Contains(msg, want) {
				t.Errorf("intercloud %s: %q lacks %q", strings.Join(args, " "), msg, want)
			}
		}
	}
}
