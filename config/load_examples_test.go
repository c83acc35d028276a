package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestLoadQuickstart(t *testing.T) {
	b, err := Load("../examples/quickstart")
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Render(nil)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(s, "", "  ")
	t.Logf("%s", js)
	var el *ErrorList
	_ = errors.As(err, &el)
	var buf bytes.Buffer
	FormatDiff(&buf, Diff(nil, s))
	t.Log(buf.String())
}
