package config

import (
	"encoding"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Error is one problem in a configuration file.
type Error struct {
	File string
	Line int    // 0 when the key has no place in the file
	Key  string // e.g. "gnss.baud", "ptp[1].domain"
	Msg  string
}

func (e Error) Error() string {
	pos := e.File
	if e.Line > 0 {
		pos = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Key == "" {
		return pos + ": " + e.Msg
	}
	return fmt.Sprintf("%s: %s: %s", pos, e.Key, e.Msg)
}

// Errors is every problem found in one file, in file order.
type Errors []Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Parse reads a configuration from data; file names it in messages.
// It returns the effective configuration (defaults filled in) or Errors.
func Parse(file string, data []byte) (Config, error) {
	cfg := Default()
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return cfg, Errors{{File: file, Line: pe.Position.Line, Msg: "syntax: " + pe.Message}}
		}
		return cfg, Errors{{File: file, Msg: err.Error()}}
	}
	if _, gnss := tree["gnss"]; !gnss && tree["upstream"] != nil {
		// No receiver table but NTP upstreams: the site without an
		// antenna, not the default receiver that is not there.
		cfg.GNSS.Device = ""
	}
	b := &binder{file: file, loc: locate(data), set: map[string]bool{}}
	b.bindStruct("", tree, reflect.ValueOf(&cfg).Elem())
	b.validate(&cfg)
	if len(b.errs) > 0 {
		// File order; errors without a place go last.
		rank := func(e Error) int {
			if e.Line == 0 {
				return math.MaxInt
			}
			return e.Line
		}
		sort.SliceStable(b.errs, func(i, j int) bool { return rank(b.errs[i]) < rank(b.errs[j]) })
		return cfg, b.errs
	}
	return cfg, nil
}

// binder copies a decoded TOML tree into a struct, collecting every error.
type binder struct {
	file string
	loc  map[string]int
	set  map[string]bool // keys present in the file
	errs Errors
}

func (b *binder) errorf(key, format string, args ...any) {
	b.errs = append(b.errs, Error{File: b.file, Line: b.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// pos is "file:line" of a key (or the file alone), for warnings.
func (b *binder) pos(key string) string {
	if l := b.line(key); l > 0 {
		return fmt.Sprintf("%s:%d", b.file, l)
	}
	return b.file
}

// line finds the key's line, or its nearest enclosing table's.
func (b *binder) line(key string) int {
	for k := key; k != ""; {
		if l, ok := b.loc[k]; ok {
			return l
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func fieldsByTag(t reflect.Type) (map[string]int, []string) {
	m := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			m[tag] = i
			names = append(names, tag)
		}
	}
	return m, names
}

func (b *binder) bindStruct(path string, tree map[string]any, rv reflect.Value) {
	fields, names := fieldsByTag(rv.Type())
	keys := make([]string, 0, len(tree))
	for k := range tree {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		key := join(path, k)
		i, ok := fields[k]
		if !ok {
			where := "the top level"
			if path != "" {
				where = "[" + path + "]"
			}
			b.errorf(key, "unknown key; %s accepts: %s", where, strings.Join(names, ", "))
			continue
		}
		b.set[key] = true
		f := rv.Type().Field(i)
		b.bindValue(key, tree[k], rv.Field(i), f.Tag.Get("check"))
	}
	// A required key whose default is empty must be written in the file.
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Type().Field(i)
		tag := f.Tag.Get("toml")
		if _, present := tree[tag]; present || f.Type.Kind() != reflect.String {
			continue
		}
		if strings.Contains(f.Tag.Get("check"), "nonempty") && rv.Field(i).String() == "" {
			b.errorf(join(path, tag), "missing: this key is required here")
		}
	}
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	default:
		return fmt.Sprintf("%v", x)
	}
}

func (b *binder) bindValue(key string, v any, fv reflect.Value, check string) {
	if fv.CanAddr() && fv.Addr().Type().Implements(textUnmarshaler) {
		s, ok := v.(string)
		if !ok {
			b.errorf(key, "expected %s, got %s", expectText(fv.Type()), describe(v))
			return
		}
		if err := fv.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			if _, specific := fv.Interface().(expecter); specific {
				// A parsed setting says what was wrong in the string.
				b.errorf(key, "expected %s, got %q: %v", expectText(fv.Type()), s, err)
				return
			}
			b.errorf(key, "expected %s, got %q", expectText(fv.Type()), s)
			return
		}
		b.checkDuration(key, fv)
		return
	}
	switch fv.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			b.errorf(key, "expected a string, got %s", describe(v))
			return
		}
		fv.SetString(s)
		b.checkString(key, s, check)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := v.(int64)
		if !ok {
			b.errorf(key, "expected an integer%s, got %s", rangeHint(check), describe(v))
			return
		}
		if fv.OverflowInt(n) {
			b.errorf(key, "expected an integer%s, got %d", rangeHint(check), n)
			return
		}
		fv.SetInt(n)
		b.checkInt(key, n, check)
	case reflect.Bool:
		x, ok := v.(bool)
		if !ok {
			b.errorf(key, "expected true or false, got %s", describe(v))
			return
		}
		fv.SetBool(x)
	case reflect.Float64:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				b.errorf(key, "expected a finite number, got %v", x)
				return
			}
			fv.SetFloat(x)
		case int64:
			fv.SetFloat(float64(x))
		default:
			b.errorf(key, "expected a number, got %s", describe(v))
			return
		}
		b.checkFloat(key, fv.Float(), check)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			b.errorf(key, "expected a table [%s], got %s", key, describe(v))
			return
		}
		b.bindStruct(key, m, fv)
	case reflect.Slice:
		b.bindSlice(key, v, fv, check)
	default:
		b.errorf(key, "internal: unsupported field kind %s", fv.Kind())
	}
}

func (b *binder) bindSlice(key string, v any, fv reflect.Value, check string) {
	et := fv.Type().Elem()
	if et.Kind() == reflect.Struct {
		tables, ok := v.([]map[string]any)
		if !ok {
			b.errorf(key, "expected an array of tables written [[%s]], got %s", key, describe(v))
			return
		}
		out := reflect.MakeSlice(fv.Type(), len(tables), len(tables))
		for i, t := range tables {
			el := out.Index(i)
			el.Set(reflect.ValueOf(defaultElem(et)))
			b.bindStruct(fmt.Sprintf("%s[%d]", key, i), t, el)
		}
		fv.Set(out)
		return
	}
	arr, ok := v.([]any)
	if !ok {
		b.errorf(key, "expected an array, got %s", describe(v))
		return
	}
	out := reflect.MakeSlice(fv.Type(), len(arr), len(arr))
	for i, x := range arr {
		b.bindValue(fmt.Sprintf("%s[%d]", key, i), x, out.Index(i), check)
	}
	fv.Set(out)
}

// defaultElem gives the defaults of one [[table]] entry.
func defaultElem(t reflect.Type) any {
	switch t {
	case reflect.TypeOf(PTP{}):
		return DefaultPTP()
	case reflect.TypeOf(NTP{}):
		return DefaultNTP()
	case reflect.TypeOf(Monitor{}):
		return DefaultMonitor()
	case reflect.TypeOf(Upstream{}):
		return DefaultUpstream()
	}
	return reflect.Zero(t).Interface()
}

// expecter is a parsed setting that says what it takes.
type expecter interface{ Expect() string }

func expectText(t reflect.Type) string {
	if t == reflect.TypeOf(Duration{}) {
		return `a duration such as "250ms", "60s" or "4h"`
	}
	if e, ok := reflect.Zero(t).Interface().(expecter); ok {
		return e.Expect()
	}
	return "a string"
}

func parseRange(check string) (lo, hi int64, ok bool) {
	for _, c := range strings.Split(check, ",") {
		if r, found := strings.CutPrefix(c, "range="); found {
			a, z, _ := strings.Cut(r, "..")
			l, e1 := strconv.ParseInt(a, 10, 64)
			h, e2 := strconv.ParseInt(z, 10, 64)
			return l, h, e1 == nil && e2 == nil
		}
	}
	return 0, 0, false
}

func rangeHint(check string) string {
	if lo, hi, ok := parseRange(check); ok {
		return fmt.Sprintf(" in %d..%d", lo, hi)
	}
	return ""
}

func (b *binder) checkInt(key string, n int64, check string) {
	if lo, hi, ok := parseRange(check); ok && (n < lo || n > hi) {
		b.errorf(key, "expected an integer in %d..%d, got %d", lo, hi, n)
	}
}

func (b *binder) checkFloat(key string, x float64, check string) {
	if lo, hi, ok := parseRange(check); ok && (x < float64(lo) || x > float64(hi)) {
		b.errorf(key, "expected a number in %d..%d, got %v", lo, hi, x)
	}
}

func (b *binder) checkString(key, s, check string) {
	for _, c := range strings.Split(check, ",") {
		switch {
		case c == "nonempty":
			if s == "" {
				b.errorf(key, "must not be empty")
			}
		case strings.HasPrefix(c, "oneof="):
			opts := strings.Split(strings.TrimPrefix(c, "oneof="), "|")
			found := false
			for _, o := range opts {
				found = found || o == s
			}
			if !found {
				b.errorf(key, "expected one of %s, got %q", quoteAll(opts), s)
			}
		}
	}
}

// checkDuration refuses negative durations everywhere; finer limits live in
// validate, next to the meaning of each key.
func (b *binder) checkDuration(key string, fv reflect.Value) {
	if d, ok := fv.Interface().(Duration); ok && d.Duration < 0 {
		b.errorf(key, "expected a positive duration, got %s", d)
	}
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return strings.Join(q, " | ")
}
