package edge

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestSampleDocumentsEveryKey: every key the configuration reads (its yaml field names, nested
// sections and rule settings included) appears in samples/edge.yaml, set or in a comment — the
// sample is the reference operators read (issue 18: "samples/edge.yaml documents every key").
func TestSampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../samples/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sample := string(b)
	var missing []string
	for _, k := range configKeys(reflect.TypeOf(Config{}), "", map[reflect.Type]bool{}) {
		name := k[strings.LastIndexByte(k, '.')+1:]
		// As a key: at a line's start (after indentation, a comment's '#', a list's '-'), or
		// inside a flow mapping ({a: 1, name: 2}).
		re := regexp.MustCompile(`(?m)(^[\s#-]*|[{,]\s*)` + regexp.QuoteMeta(name) + `:`)
		if !re.MatchString(sample) {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("samples/edge.yaml does not mention these keys (set them, or show them in a comment):\n  %s", strings.Join(missing, "\n  "))
	}
}

// configKeys lists the yaml keys of struct type t, recursively, as dotted paths under prefix.
func configKeys(t reflect.Type, prefix string, seen map[reflect.Type]bool) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	// A type that reads itself from YAML (a size, a duration, a rate) is a value, not a section.
	if reflect.PointerTo(t).Implements(yamlUnmarshalerType) || t.PkgPath() == "time" {
		return nil
	}
	seen[t] = true
	defer delete(seen, t)
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			keys = append(keys, configKeys(f.Type, prefix, seen)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		keys = append(keys, prefix+name)
		keys = append(keys, configKeys(f.Type, prefix+name+".", seen)...)
	}
	return keys
}

var yamlUnmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
