package itest

import (
	"os"
	"testing"
)

// TestMain stops what the tests shared (a systemd-journald started for
// them) once every test, parallel ones included, has ended.
func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	os.Exit(code)
}
