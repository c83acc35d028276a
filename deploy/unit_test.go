package deploy

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// unit is a parsed systemd unit file: section → key → values in order
// (Environment= and the like repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" || strings.HasSuffix(l, `\`) {
				t.Fatalf("%s:%d: not a key=value line of a section (continuations are not used): %q", path, line, l)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one is the single value of a key.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Fatalf("[%s] %s: %d values, want 1", section, key, len(vs))
	}
	return vs[0]
}

// environment is what Environment= lines set (one assignment each, no
// quotes: the units keep to that so that this reading is systemd's).
func (u unit) environment(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, a := range u["Service"]["Environment"] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || strings.ContainsAny(a, `"' `) {
			t.Fatalf("Environment=%s: want one unquoted NAME=value", a)
		}
		env[k] = v
	}
	return env
}

// expand turns a command line into argv the way systemd does for the
// forms the units use: %-specifiers, ${NAME} as one word (empty too) and
// $NAME split on whitespace (empty: no word). Quotes are refused rather
// than guessed at.
func expand(line string, env map[string]string, spec map[byte]string) ([]string, error) {
	if strings.ContainsAny(line, `"'\`) {
		return nil, fmt.Errorf("%q: quotes and escapes are not used in the units", line)
	}
	var argv []string
	for _, w := range strings.Fields(line) {
		var b strings.Builder
		for i := 0; i < len(w); i++ {
			if w[i] != '%' {
				b.WriteByte(w[i])
				continue
			}
			if i+1 == len(w) {
				return nil, fmt.Errorf("%q: a lone %%", w)
			}
			i++
			if w[i] == '%' {
				b.WriteByte('%')
				continue
			}
			v, ok := spec[w[i]]
			if !ok {
				return nil, fmt.Errorf("%q: specifier %%%c not known to the test", w, w[i])
			}
			b.WriteString(v)
		}
		w = b.String()
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			argv = append(argv, env[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$"):
			argv = append(argv, strings.Fields(env[w[1:]])...)
		case strings.Contains(w, "$"):
			return nil, fmt.Errorf("%q: a variable inside a word is not used in the units", w)
		default:
			argv = append(argv, w)
		}
	}
	return argv, nil
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "one", "E": "", "S": "--x 1  --y"}
	spec := map[byte]string{'H': "host", 'S': "/var/lib"}
	for _, tc := range []struct {
		line string
		want []string
		err  bool
	}{
		{"/bin/x --name ${A} --d %S/x/%H", []string{"/bin/x", "--name", "one", "--d", "/var/lib/x/host"}, false},
		{"/bin/x --s ${E} $E $S", []string{"/bin/x", "--s", "", "--x", "1", "--y"}, false},
		{"/bin/x 100%%", []string{"/bin/x", "100%"}, false},
		{`/bin/x "quoted arg"`, nil, true},
		{"/bin/x --a=${A}", nil, true},
		{"/bin/x %Z", nil, true},
	} {
		got, err := expand(tc.line, env, spec)
		if (err != nil) != tc.err || strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("expand(%q) = %q, %v; want %q, error %v", tc.line, got, err, tc.want, tc.err)
		}
	}
}
