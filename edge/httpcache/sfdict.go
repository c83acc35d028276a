package httpcache

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// CDN-Cache-Control (RFC 9213 §2.1) is a Structured Field Dictionary
// (RFC 8941 §3.2), not a Cache-Control list: a value that does not parse
// as one, or a known directive of the wrong type, makes the cache ignore
// the field as a whole and fall back to Cache-Control and Expires. Half a
// field read leniently would let a typo decide how long a CDN keeps a
// response.

type sfKind uint8

const (
	sfInteger sfKind = iota + 1
	sfDecimal
	sfString
	sfToken
	sfBytes
	sfBoolean
	sfInnerList
)

// sfItem is a bare item; only what the directives need is kept.
type sfItem struct {
	kind sfKind
	n    int64  // integer
	s    string // string or token
	b    bool   // boolean
}

type sfMember struct {
	key  string
	item sfItem   // unless an inner list
	list []sfItem // items of an inner list
}

// parseSFDictionary parses field lines as one Dictionary (lines joined
// with commas, RFC 8941 §4.2). A key given twice keeps its last value.
func parseSFDictionary(lines []string) ([]sfMember, error) {
	p := sfParser{s: strings.Join(lines, ",")}
	p.skipSP()
	var out []sfMember
	for !p.done() {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		m := sfMember{key: key}
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				m.item.kind = sfInnerList
				if m.list, err = p.innerList(); err != nil {
					return nil, err
				}
			} else if m.item, err = p.bareItem(); err != nil {
				return nil, err
			}
		} else {
			m.item = sfItem{kind: sfBoolean, b: true}
		}
		if err := p.params(); err != nil {
			return nil, err
		}
		replaced := false
		for i := range out {
			if out[i].key == key {
				out[i], replaced = m, true
			}
		}
		if !replaced {
			out = append(out, m)
		}
		p.skipOWS()
		if p.done() {
			break
		}
		if p.peek() != ',' {
			return nil, p.errorf("expected ',' after member %q", key)
		}
		p.i++
		p.skipOWS()
		if p.done() {
			return nil, p.errorf("trailing comma")
		}
	}
	return out, nil
}

type sfParser struct {
	s string
	i int
}

func (p *sfParser) done() bool { return p.i >= len(p.s) }

func (p *sfParser) peek() byte {
	if p.done() {
		return 0
	}
	return p.s[p.i]
}

func (p *sfParser) skipSP() {
	for p.peek() == ' ' {
		p.i++
	}
}

func (p *sfParser) skipOWS() {
	for c := p.peek(); c == ' ' || c == '\t'; c = p.peek() {
		p.i++
	}
}

func (p *sfParser) errorf(format string, args ...any) error {
	return fmt.Errorf("structured field at %d: %s", p.i, fmt.Sprintf(format, args...))
}

func isLCAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool   { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool   { return isLCAlpha(c) || 'A' <= c && c <= 'Z' }

func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", p.errorf("a key starts with a lowercase letter or '*'")
	}
	for c := p.peek(); isLCAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*'; c = p.peek() {
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) params() error {
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		if _, err := p.key(); err != nil {
			return err
		}
		if p.peek() == '=' {
			p.i++
			if _, err := p.bareItem(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *sfParser) innerList() ([]sfItem, error) {
	p.i++ // '('
	var items []sfItem
	for !p.done() {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return items, nil
		}
		it, err := p.bareItem()
		if err != nil {
			return nil, err
		}
		if err := p.params(); err != nil {
			return nil, err
		}
		items = append(items, it)
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, p.errorf("expected ' ' or ')' in an inner list")
		}
	}
	return nil, p.errorf("unterminated inner list")
}

func (p *sfParser) bareItem() (sfItem, error) {
	c := p.peek()
	switch {
	case c == '-' || isDigit(c):
		return p.number()
	case c == '"':
		return p.str()
	case c == '*' || isAlpha(c):
		start := p.i
		p.i++
		for c := p.peek(); c != 0 && (isTchar(c) || c == ':' || c == '/'); c = p.peek() {
			p.i++
		}
		return sfItem{kind: sfToken, s: p.s[start:p.i]}, nil
	case c == ':':
		p.i++
		for c := p.peek(); c != ':'; c = p.peek() {
			if c == 0 || !(isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=') {
				return sfItem{}, p.errorf("invalid byte sequence")
			}
			p.i++
		}
		p.i++
		return sfItem{kind: sfBytes}, nil
	case c == '?':
		p.i++
		switch p.peek() {
		case '0':
			p.i++
			return sfItem{kind: sfBoolean}, nil
		case '1':
			p.i++
			return sfItem{kind: sfBoolean, b: true}, nil
		}
		return sfItem{}, p.errorf("invalid boolean")
	}
	return sfItem{}, p.errorf("invalid item")
}

// number is RFC 8941 §4.2.4: at most 15 integer digits, or 12 and a
// fraction of 1 to 3 digits.
func (p *sfParser) number() (sfItem, error) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	var n int64
	digits, frac := 0, -1
	for {
		c := p.peek()
		switch {
		case isDigit(c):
			if frac >= 0 {
				frac++
			} else {
				digits++
				n = n*10 + int64(c-'0')
			}
		case c == '.' && frac < 0:
			if digits == 0 || digits > 12 {
				return sfItem{}, p.errorf("invalid decimal")
			}
			frac = 0
		default:
			switch {
			case digits == 0:
				return sfItem{}, p.errorf("a number needs digits")
			case frac == 0 || frac > 3:
				return sfItem{}, p.errorf("a decimal has 1 to 3 fraction digits")
			case frac > 0:
				return sfItem{kind: sfDecimal}, nil
			case digits > 15:
				return sfItem{}, p.errorf("integer too long")
			}
			if neg {
				n = -n
			}
			return sfItem{kind: sfInteger, n: n}, nil
		}
		p.i++
	}
}

func (p *sfParser) str() (sfItem, error) {
	p.i++ // '"'
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if n := p.peek(); n == '"' || n == '\\' {
				b.WriteByte(n)
				p.i++
				continue
			}
			return sfItem{}, p.errorf("invalid escape in a string")
		case c == '"':
			return sfItem{kind: sfString, s: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return sfItem{}, p.errorf("invalid character in a string")
		}
		b.WriteByte(c)
	}
	return sfItem{}, p.errorf("unterminated string")
}

func isTchar(c byte) bool {
	return isAlpha(c) || isDigit(c) || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// ParseCDNCacheControl reads a CDN-Cache-Control field (RFC 9213). An
// error means the field must be ignored: it is empty, not a Dictionary,
// or a directive this cache knows has a value of the wrong type.
func ParseCDNCacheControl(lines []string) (cc CacheControl, err error) {
	cc = CacheControl{MaxAge: -1, SMaxAge: -1, StaleWhileRevalidate: -1, StaleIfError: -1, MaxStale: -1, MinFresh: -1}
	members, err := parseSFDictionary(lines)
	if err != nil {
		return cc, fmt.Errorf("cdn-cache-control: %w", err)
	}
	if len(members) == 0 {
		return cc, errors.New("cdn-cache-control: empty")
	}
	for _, m := range members {
		it := m.item
		wrong := func() error {
			return fmt.Errorf("cdn-cache-control: %s has a value of the wrong type", m.key)
		}
		delta := func(d *time.Duration) error {
			if it.kind != sfInteger || it.n < 0 {
				return wrong()
			}
			*d = time.Duration(min(it.n, maxDelta)) * time.Second
			return nil
		}
		flag := func(b *bool) error {
			if it.kind != sfBoolean {
				return wrong()
			}
			*b = it.b
			return nil
		}
		// no-cache and private: a flag, or the fields they name as a
		// string or an inner list of strings or tokens.
		fields := func(b *bool, names *[]string) error {
			switch it.kind {
			case sfBoolean:
				*b = it.b
			case sfString:
				*b, *names = true, fieldNames(it.s)
			case sfInnerList:
				*b = true
				for _, f := range m.list {
					if f.kind != sfString && f.kind != sfToken {
						return wrong()
					}
					*names = append(*names, strings.ToLower(f.s))
				}
			default:
				return wrong()
			}
			return nil
		}
		var err error
		switch m.key {
		case "max-age":
			err = delta(&cc.MaxAge)
		case "s-maxage":
			err = delta(&cc.SMaxAge)
		case "stale-while-revalidate":
			err = delta(&cc.StaleWhileRevalidate)
		case "stale-if-error":
			err = delta(&cc.StaleIfError)
		case "no-store":
			err = flag(&cc.NoStore)
		case "public":
			err = flag(&cc.Public)
		case "must-revalidate":
			err = flag(&cc.MustRevalidate)
		case "proxy-revalidate":
			err = flag(&cc.ProxyRevalidate)
		case "must-understand":
			err = flag(&cc.MustUnderstand)
		case "no-transform":
			err = flag(&cc.NoTransform)
		case "immutable":
			err = flag(&cc.Immutable)
		case "no-cache":
			err = fields(&cc.NoCache, &cc.NoCacheFields)
		case "private":
			err = fields(&cc.Private, &cc.PrivateFields)
		}
		if err != nil {
			return cc, err
		}
	}
	return cc, nil
}
