package accesslog

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Format is how a line is written.
type Format int

const (
	// JSON is one object per line, keys in a fixed order.
	JSON Format = iota
	// Combined is nginx's and Apache's "combined" format, which every log
	// analyser reads.
	Combined
)

// ParseFormat reads "json" or "combined".
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "json":
		return JSON, true
	case "combined":
		return Combined, true
	}
	return 0, false
}

// Field is an extra key/value of a JSON line (the combined format has no
// room for them).
type Field struct{ Key, Value string }

// Entry is one finished request.
type Entry struct {
	// Time is when the request finished (nginx's $time_local).
	Time     time.Time
	Client   string
	Method   string
	Host     string
	URI      string // as requested: path and query
	Proto    string
	Status   int
	Bytes    int64 // body bytes sent
	Duration time.Duration
	Referer  string
	// UserAgent is the client's User-Agent.
	UserAgent string
	Fields    []Field
}

// appendLine appends e in format f, with its newline.
func appendLine(b []byte, f Format, e *Entry) []byte {
	if f == Combined {
		return appendCombined(b, e)
	}
	return appendJSON(b, e)
}

// appendCombined writes
//
//	$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
//
// escaping as nginx's escape=default does: '"', '\' and bytes outside
// 0x20..0x7e become \xHH, so that a quote in a path or a user agent
// cannot forge a field and a control byte cannot forge a line.
func appendCombined(b []byte, e *Entry) []byte {
	b = appendDash(b, e.Client)
	b = append(b, " - - ["...)
	b = e.Time.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, `] "`...)
	b = appendNginx(b, e.Method)
	b = append(b, ' ')
	b = appendNginx(b, e.URI)
	if e.Proto != "" {
		b = append(b, ' ')
		b = appendNginx(b, e.Proto)
	}
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, ` "`...)
	b = appendNginx(b, dash(e.Referer))
	b = append(b, `" "`...)
	b = appendNginx(b, dash(e.UserAgent))
	return append(b, "\"\n"...)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func appendDash(b []byte, s string) []byte { return appendNginx(b, dash(s)) }

const hexDigits = "0123456789ABCDEF"

func appendNginx(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// appendJSON writes one object; strings are escaped as RFC 8259 asks,
// and bytes that are not UTF-8 become U+FFFD so that every line parses.
func appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, '"')
	b = appendJSONField(b, "client", e.Client)
	b = appendJSONField(b, "method", e.Method)
	b = appendJSONField(b, "host", e.Host)
	b = appendJSONField(b, "uri", e.URI)
	b = appendJSONField(b, "proto", e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, e.Duration.Seconds(), 'f', -1, 64)
	b = appendJSONField(b, "referer", e.Referer)
	b = appendJSONField(b, "user_agent", e.UserAgent)
	for _, f := range e.Fields {
		b = appendJSONField(b, f.Key, f.Value)
	}
	return append(b, "}\n"...)
}

func appendJSONField(b []byte, k, v string) []byte {
	b = append(b, ',')
	b = appendJSONString(b, k)
	b = append(b, ':')
	return appendJSONString(b, v)
}

func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}
