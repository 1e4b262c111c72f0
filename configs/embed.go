// Package configs holds the example configuration, the demo configuration
// used by `make run`, and the systemd unit, embedded so that the binary can
// print and use them without the source tree.
package configs

import _ "embed"

// Example is configs/sitegm.toml: every key, commented, with its default.
//
//go:embed sitegm.toml
var Example []byte

// Demo is configs/demo.toml: the embedded default of `make run`.
//
//go:embed demo.toml
var Demo []byte
