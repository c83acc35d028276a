package listen

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/intercloud/intercloud/internal/h1"
)

func TestBindServeStop(t *testing.T) {
	for _, tc := range []struct {
		name    string
		netHTTP bool
	}{{"h1", false}, {"net/http", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.netHTTP {
				t.Setenv(Switch, "net/http")
			}
			release := make(chan struct{})
			started := make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/slow" {
					close(started)
					<-release
				}
				io.WriteString(w, "ok")
			})
			l, err := Bind(Config{Addr: "127.0.0.1:0", Handler: h})
			if err != nil {
				t.Fatal(err)
			}
			if _, isH1 := l.srv.(*h1.Server); isH1 == tc.netHTTP {
				t.Fatalf("server %T with %s=%v", l.srv, Switch, tc.netHTTP)
			}
			addr := l.Addr().String()
			// Bound but not served: a second bind of the address fails.
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				t.Fatal("the address is free while bound")
			}
			l.Serve()
			slow := make(chan string, 1)
			go func() {
				resp, err := http.Get("http://" + addr + "/slow")
				if err != nil {
					slow <- err.Error()
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				slow <- string(b)
			}()
			<-started
			// Stop frees the port at once; the request in flight finishes.
			l.Stop(5 * time.Second)
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("port not free after Stop: %v", err)
			}
			ln.Close()
			close(release)
			if got := <-slow; got != "ok" {
				t.Fatalf("request in flight during Stop: %q", got)
			}
		})
	}
}

func TestShutdownUnservedListener(t *testing.T) {
	l, err := Bind(Config{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()})
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("port not free after Shutdown of an unserved listener: %v", err)
	}
	ln.Close()
}
