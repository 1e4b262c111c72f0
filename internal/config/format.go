package config

import (
	"bytes"

	"github.com/BurntSushi/toml"
)

// Format writes the configuration back as TOML, every key present: what
// `sitegm check-config` prints as the effective configuration.
func Format(c Config) string {
	var buf bytes.Buffer
	buf.WriteString("# effective configuration (defaults filled in)\n")
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		// Only unsupported Go types make the encoder fail; Config has none.
		panic("config: encode: " + err.Error())
	}
	return buf.String()
}
