package config

import (
	"fmt"
	"strings"
)

// locate maps each key path ("gnss.baud", "ptp[1].domain", "ptp[1]") to the
// line that defines it. The TOML library keeps key positions private, so this
// reads the file's shape again: table headers, array-of-table headers and
// key = value lines. It only has to be right for files the TOML parser
// accepted, and is only used to place messages; a key it cannot place is
// reported against its table, or without a line.
func locate(data []byte) map[string]int {
	loc := map[string]int{}
	arrays := map[string]int{} // [[name]] -> entries so far
	prefix := ""
	inMultiline := "" // the closing delimiter of a multi-line string
	depth := 0        // open brackets of a multi-line array or inline table
	for i, raw := range strings.Split(string(data), "\n") {
		line := i + 1
		s := strings.TrimSpace(raw)
		if inMultiline != "" {
			if strings.Contains(s, inMultiline) {
				inMultiline = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketBalance(s)
			continue
		}
		if s == "" || s[0] == '#' {
			continue
		}
		if strings.HasPrefix(s, "[[") {
			name := normKey(strings.TrimSuffix(strings.TrimSpace(cutComment(s[2:])), "]]"))
			idx := arrays[name]
			arrays[name] = idx + 1
			prefix = fmt.Sprintf("%s[%d]", name, idx)
			setOnce(loc, name, line)
			setOnce(loc, prefix, line)
			continue
		}
		if s[0] == '[' {
			name := normKey(strings.TrimSuffix(strings.TrimSpace(cutComment(s[1:])), "]"))
			prefix = name
			setOnce(loc, prefix, line)
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			continue
		}
		setOnce(loc, join(prefix, normKey(k)), line)
		v = strings.TrimSpace(v)
		for _, d := range []string{`"""`, `'''`} {
			if strings.HasPrefix(v, d) && !strings.Contains(v[3:], d) {
				inMultiline = d
			}
		}
		if inMultiline == "" {
			depth = bracketBalance(cutComment(v))
		}
	}
	return loc
}

func setOnce(m map[string]int, k string, line int) {
	if _, ok := m[k]; !ok {
		m[k] = line
	}
}

// normKey turns `a . "b"` into a.b.
func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return strings.Join(parts, ".")
}

// cutComment drops a trailing # comment that is outside any string.
func cutComment(s string) string {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return s[:i]
		}
	}
	return s
}

// bracketBalance counts [ and { minus ] and } outside strings.
func bracketBalance(s string) int {
	n := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			return n
		case c == '[' || c == '{':
			n++
		case c == ']' || c == '}':
			n--
		}
	}
	return n
}
