package lab

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// cpioWriter writes an initramfs in the "newc" format the kernel unpacks
// (Documentation/driver-api/early-userspace/buffer-format.rst): a
// 110-byte ASCII header per entry, the name, then the data, each padded to
// four bytes, and a TRAILER!!! entry at the end.
type cpioWriter struct {
	w     io.Writer
	ino   uint32
	wrote map[string]bool
}

func newCPIO(w io.Writer) *cpioWriter { return &cpioWriter{w: w, ino: 1, wrote: map[string]bool{}} }

func (c *cpioWriter) header(name string, mode uint32, size int) error {
	c.ino++
	h := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := io.WriteString(c.w, h+name+"\x00"); err != nil {
		return err
	}
	return c.pad(110 + len(name) + 1)
}

func (c *cpioWriter) pad(n int) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// dir adds a directory and its parents.
func (c *cpioWriter) dir(name string) error {
	name = strings.Trim(name, "/")
	if name == "" || name == "." || c.wrote[name] {
		return nil
	}
	if err := c.dir(filepath.Dir(name)); err != nil {
		return err
	}
	c.wrote[name] = true
	return c.header(name, 0o40755, 0)
}

// file adds a regular file with data.
func (c *cpioWriter) file(name string, mode uint32, data []byte) error {
	name = strings.Trim(name, "/")
	if err := c.dir(filepath.Dir(name)); err != nil {
		return err
	}
	c.wrote[name] = true
	if err := c.header(name, 0o100000|mode, len(data)); err != nil {
		return err
	}
	if _, err := c.w.Write(data); err != nil {
		return err
	}
	return c.pad(len(data))
}

// symlink adds a symbolic link.
func (c *cpioWriter) symlink(name, target string) error {
	name = strings.Trim(name, "/")
	if err := c.dir(filepath.Dir(name)); err != nil {
		return err
	}
	c.wrote[name] = true
	if err := c.header(name, 0o120777, len(target)); err != nil {
		return err
	}
	if _, err := io.WriteString(c.w, target); err != nil {
		return err
	}
	return c.pad(len(target))
}

// copyFile adds a file from the host at its path (or at as).
func (c *cpioWriter) copyFile(host, as string) error {
	b, err := os.ReadFile(host)
	if err != nil {
		return err
	}
	st, err := os.Stat(host)
	if err != nil {
		return err
	}
	return c.file(as, uint32(st.Mode().Perm()), b)
}

func (c *cpioWriter) close() error { return c.header("TRAILER!!!", 0, 0) }
