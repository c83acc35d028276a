package edge

import (
	"context"
	"errors"
	"time"

	"github.com/intercloud/intercloud/config"
	"github.com/intercloud/intercloud/internal/accesslog"
)

// openAccessLog opens the sink a node's rendered accessLog section
// describes; nil when it is off.
func (e *Edge) openAccessLog(c *config.AccessLog) (*accesslog.Log, error) {
	if c == nil || c.Path == config.AccessLogOff {
		return nil, nil
	}
	f, ok := accesslog.ParseFormat(c.Format)
	if !ok {
		return nil, errors.New("access log: unknown format " + quote(c.Format) + " (config rendering fills json)")
	}
	return accesslog.Open(accesslog.Options{
		Path: c.Path, Format: f, Buffer: int(c.Buffer), Flush: c.Flush.D(), Sample: c.Sample,
		Written: e.metrics.accessLines, Dropped: e.metrics.accessDropped, Errors: e.log,
	})
}

// closeAccessLog closes a replaced sink in the background: what it holds
// is written to the file it opened (a renamed one, after logrotate) while
// requests go on with the new one. Close waits for it.
func (e *Edge) closeAccessLog(l *accesslog.Log) {
	if l == nil {
		return
	}
	e.bg.Add(1)
	go func() {
		defer e.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			e.log.Error("access log: closing the previous file", "err", err)
		}
	}()
}

// logRequest writes x's access log line, when the log is on.
func (e *Edge) logRequest(x *exchange, dist, class string) {
	l := e.alog.Load()
	if l == nil {
		return
	}
	now := time.Now()
	pattern := ""
	if x.b != nil {
		pattern = x.b.pattern
	}
	client := x.clientIP
	if client == "" {
		client = clientIP(x.r)
	}
	uri := x.r.RequestURI
	if uri == "" {
		uri = x.r.URL.RequestURI()
	}
	h := x.r.Header
	var ref, ua string
	if v := h["Referer"]; len(v) > 0 {
		ref = v[0]
	}
	if v := h["User-Agent"]; len(v) > 0 {
		ua = v[0]
	}
	fields := [...]accesslog.Field{{Key: "distribution", Value: dist}, {Key: "behavior", Value: pattern},
		{Key: "cache", Value: class}, {Key: "origin", Value: x.origin}}
	l.Log(&accesslog.Entry{
		Time: now, Client: client, Method: x.r.Method, Host: x.r.Host, URI: uri, Proto: x.r.Proto,
		Status: x.w.code, Bytes: x.w.bytes, Duration: now.Sub(x.start), Referer: ref, UserAgent: ua,
		Fields: fields[:],
	})
}
