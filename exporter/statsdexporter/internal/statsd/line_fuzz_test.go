package statsd

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// parseLine reads back one line in a tag format: the inverse of write for
// sanitized names and tags.
func parseLine(t *testing.T, s string, tf TagFormat) (name string, tags []Tag, value string, typ Type, rate string) {
	t.Helper()
	head, rest, ok := strings.Cut(s, ":")
	if !ok {
		t.Fatalf("line %q has no ':'", s)
	}
	name = head
	sep := map[TagFormat]string{TagFormatInfluxDB: ",", TagFormatGraphite: ";"}[tf]
	if sep != "" {
		parts := strings.Split(head, sep)
		name = parts[0]
		for _, p := range parts[1:] {
			k, v, _ := strings.Cut(p, "=")
			tags = append(tags, Tag{k, v})
		}
	}
	fields := strings.Split(rest, "|")
	if len(fields) < 2 {
		t.Fatalf("line %q has no type", s)
	}
	value, typ = fields[0], Type(fields[1])
	for _, f := range fields[2:] {
		switch {
		case strings.HasPrefix(f, "@"):
			rate = f[1:]
		case strings.HasPrefix(f, "#") && tf == TagFormatDogStatsD:
			for _, p := range strings.Split(f[1:], ",") {
				k, v, _ := strings.Cut(p, ":")
				tags = append(tags, Tag{k, v})
			}
		default:
			t.Fatalf("line %q: unexpected field %q", s, f)
		}
	}
	return name, tags, value, typ, rate
}

// FuzzFormatLine formats lines of sanitized names and tags in every tag
// format and parses them back: same name, tags, value, type and rate.
func FuzzFormatLine(f *testing.F) {
	f.Add("http.requests", "env", "prod", 3.5, 0.25, uint8(0), false)
	f.Add("queue depth", "a:b", "c|d", -2.0, 1.0, uint8(1), false)
	f.Add("cpu", "k", "", 1e300, 0.1, uint8(2), true)
	f.Add("é", "#", "@", math.Copysign(0, -1), 0.0, uint8(3), false)
	types := []Type{Counter, Gauge, Timer, Histogram, Distribution}
	f.Fuzz(func(t *testing.T, name, key, val string, v, rate float64, typ uint8, delta bool) {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.IsNaN(rate) || name == "" || key == "" {
			return
		}
		l := Line{Name: SanitizeName(name), Value: v, Type: types[int(typ)%len(types)], Rate: rate, Delta: delta,
			Tags: []Tag{{SanitizeTag(key), SanitizeTag(val)}}}
		for _, tf := range TagFormats {
			out := Format(l, tf)
			lines := strings.Split(out, "\n")
			if len(lines) > 2 || (len(lines) == 2 && !(l.Type == Gauge && !l.Delta)) {
				t.Fatalf("%q: %d lines", out, len(lines))
			}
			last := lines[len(lines)-1]
			gotName, gotTags, value, gotType, gotRate := parseLine(t, last, tf)
			if gotName != l.Name || gotType != l.Type {
				t.Fatalf("%q: name %q type %q, want %q %q", last, gotName, gotType, l.Name, l.Type)
			}
			if tf != TagFormatNone && (len(gotTags) != 1 || gotTags[0] != l.Tags[0]) {
				t.Fatalf("%q (%s): tags %q, want %q", last, tf, gotTags, l.Tags)
			}
			if strings.ContainsAny(value, "eE") {
				t.Fatalf("%q: value %q has an exponent", last, value)
			}
			back, err := strconv.ParseFloat(value, 64)
			if err != nil || back != v {
				t.Fatalf("%q: value %q reads back as %v (%v), want %v", last, value, back, err, v)
			}
			if l.Delta && v >= 0 && value[0] != '+' {
				t.Fatalf("%q: a positive delta has no sign", last)
			}
			if (rate > 0 && rate < 1) != (gotRate != "") {
				t.Fatalf("%q: rate %v written as %q", last, rate, gotRate)
			}
		}
		if n := uint64(math.Abs(v)); n > 0 && n < 1<<40 {
			if r := WeightRate(n); n > 1 && uint64(1/r) != n {
				t.Fatalf("WeightRate(%d) = %v, 1/r = %v", n, r, 1/r)
			}
		}
	})
}
