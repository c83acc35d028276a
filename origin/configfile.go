package origin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// LoadConfigFile reads a standalone origin's YAML config (the fields of
// Config: root, listen, admin, tokenFile, cacheRules, maxUpload). Unknown
// keys are errors, reported with their line.
func LoadConfigFile(path string) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("origin config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("origin config %s: %w", path, err)
	}
	return c, nil
}
