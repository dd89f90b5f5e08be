// Package statsd turns OpenTelemetry metrics into StatsD lines and packs them
// into packets: counters become increments (cumulative input is turned into
// deltas per series), gauges stay gauges, histograms become aggregates or
// weighted observations, and tags follow one of the common dialects.
package statsd // import "github.com/metricsmodule/metricsmodule/exporter/statsdexporter/internal/statsd"

import (
	"math"
	"strconv"
	"strings"
)

// TagFormat is how tags are written.
type TagFormat string

// Tag formats.
const (
	// TagFormatNone writes no tags.
	TagFormatNone TagFormat = "none"
	// TagFormatDogStatsD writes name:value|type|#k:v,k2:v2.
	TagFormatDogStatsD TagFormat = "dogstatsd"
	// TagFormatInfluxDB writes name,k=v,k2=v2:value|type (Telegraf).
	TagFormatInfluxDB TagFormat = "influxdb"
	// TagFormatGraphite writes name;k=v;k2=v2:value|type (Graphite tags).
	TagFormatGraphite TagFormat = "graphite"
)

// TagFormats lists the valid tag formats.
var TagFormats = []TagFormat{TagFormatNone, TagFormatDogStatsD, TagFormatInfluxDB, TagFormatGraphite}

// Type is a StatsD metric type.
type Type string

// StatsD metric types.
const (
	Counter      Type = "c"
	Gauge        Type = "g"
	Timer        Type = "ms"
	Histogram    Type = "h"
	Distribution Type = "d"
)

// Tag is one tag.
type Tag struct {
	Key, Value string
}

// Line is one StatsD sample before formatting.
type Line struct {
	Name  string
	Value float64
	Type  Type
	// Rate is the sample rate; 0 or 1 writes none.
	Rate float64
	// Delta writes a gauge as a signed change (+3 or -2).
	Delta bool
	Tags  []Tag
}

// Format writes l in the tag format. A gauge set to a negative value is
// written as two lines, "name:0|g" then "name:-5|g", since a leading sign
// means a change in StatsD; the two stay in one entry so they are never split
// across packets.
func Format(l Line, tf TagFormat) string {
	var b strings.Builder
	if l.Type == Gauge && !l.Delta && (l.Value < 0 || (l.Value == 0 && math.Signbit(l.Value))) {
		write(&b, Line{Name: l.Name, Type: Gauge, Tags: l.Tags}, tf)
		b.WriteByte('\n')
	}
	write(&b, l, tf)
	return b.String()
}

func write(b *strings.Builder, l Line, tf TagFormat) {
	b.WriteString(l.Name)
	switch tf {
	case TagFormatInfluxDB:
		for _, t := range l.Tags {
			b.WriteByte(',')
			b.WriteString(t.Key)
			b.WriteByte('=')
			b.WriteString(t.Value)
		}
	case TagFormatGraphite:
		for _, t := range l.Tags {
			b.WriteByte(';')
			b.WriteString(t.Key)
			b.WriteByte('=')
			b.WriteString(t.Value)
		}
	}
	b.WriteByte(':')
	if l.Delta && l.Value >= 0 {
		b.WriteByte('+')
	}
	b.WriteString(FormatValue(l.Value))
	b.WriteByte('|')
	b.WriteString(string(l.Type))
	if l.Rate > 0 && l.Rate < 1 {
		b.WriteString("|@")
		b.WriteString(strconv.FormatFloat(l.Rate, 'g', -1, 64))
	}
	if tf == TagFormatDogStatsD && len(l.Tags) > 0 {
		b.WriteString("|#")
		for i, t := range l.Tags {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(t.Key)
			b.WriteByte(':')
			b.WriteString(t.Value)
		}
	}
}

// FormatValue writes v without an exponent (StatsD servers differ in what
// number syntax they accept; plain decimals are read by all).
func FormatValue(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// WeightRate returns the sample rate that makes a server count one line as
// n samples: the largest rate r with int(1/r) == n, so servers that truncate
// 1/r and servers that keep it as a float agree.
func WeightRate(n uint64) float64 {
	if n <= 1 {
		return 1
	}
	r := 1 / float64(n)
	for 1/r < float64(n) {
		r = math.Nextafter(r, 0)
	}
	return r
}

// SanitizeName replaces what a StatsD name may not hold (anything but
// letters, digits, '_', '-' and '.') with '_'.
func SanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// SanitizeTag replaces the separators of every tag dialect (':', '|', '@',
// '#', ',', '=', ';') and white space in a tag key or value with '_'.
func SanitizeTag(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ':', '|', '@', '#', ',', '=', ';', ' ', '\t', '\n', '\r':
			return '_'
		}
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
