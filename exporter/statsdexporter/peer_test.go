package statsdexporter

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// This file is the StatsD peer of the tests: real UDP and TCP sockets on
// 127.0.0.1 whose lines go through a strict parser of the StatsD wire format
// (Etsy StatsD types and sample rates, DogStatsD |#tags, InfluxDB/Telegraf
// name,k=v tags, Graphite name;k=v tags) into a server-side aggregation as a
// StatsD daemon does it (counters scaled by 1/rate, gauges set or changed by
// a signed value, timers kept with their weight). Anything the parser does
// not accept fails the test. The contrib statsdreceiver is not served at our
// contrib release, so it cannot be the peer.

var (
	nameRe   = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	valueRe  = regexp.MustCompile(`^[+-]?[0-9]+(\.[0-9]+)?$`)
	tagKeyRe = regexp.MustCompile(`^[^:|@#,=;\s]+$`)
	tagValRe = regexp.MustCompile(`^[^:|@#,=;\s]+$`)
)

type sample struct {
	name  string
	tags  map[string]string
	value float64
	sign  bool // the value had a leading sign (a gauge change)
	typ   string
	rate  float64
}

// parseLine parses one line strictly in the tag format.
func parseLine(line, format string) (sample, error) {
	s := sample{tags: map[string]string{}, rate: 1}
	colon := strings.IndexByte(line, ':')
	if colon <= 0 {
		return s, errors.New("no name:value")
	}
	head, rest := line[:colon], line[colon+1:]
	switch format {
	case "influxdb", "graphite":
		sep := ","
		if format == "graphite" {
			sep = ";"
		}
		parts := strings.Split(head, sep)
		head = parts[0]
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || !tagKeyRe.MatchString(k) || !tagValRe.MatchString(v) {
				return s, fmt.Errorf("bad tag %q", kv)
			}
			s.tags[k] = v
		}
	}
	if !nameRe.MatchString(head) {
		return s, fmt.Errorf("bad name %q", head)
	}
	s.name = head
	fields := strings.Split(rest, "|")
	if len(fields) < 2 {
		return s, errors.New("no type")
	}
	if !valueRe.MatchString(fields[0]) {
		return s, fmt.Errorf("bad value %q", fields[0])
	}
	s.value, _ = strconv.ParseFloat(fields[0], 64)
	s.sign = fields[0][0] == '+' || fields[0][0] == '-'
	s.typ = fields[1]
	switch s.typ {
	case "c", "ms", "h", "d":
		if s.sign && fields[0][0] == '+' {
			return s, errors.New("a + sign is for gauges only")
		}
	case "g":
	default:
		return s, fmt.Errorf("bad type %q", s.typ)
	}
	for _, f := range fields[2:] {
		switch {
		case strings.HasPrefix(f, "@") && s.rate == 1:
			r, err := strconv.ParseFloat(f[1:], 64)
			if err != nil || !(r > 0 && r < 1) {
				return s, fmt.Errorf("bad rate %q", f)
			}
			s.rate = r
		case strings.HasPrefix(f, "#") && format == "dogstatsd" && len(s.tags) == 0:
			for _, kv := range strings.Split(f[1:], ",") {
				k, v, ok := strings.Cut(kv, ":")
				if !ok || !tagKeyRe.MatchString(k) || !tagValRe.MatchString(v) {
					return s, fmt.Errorf("bad tag %q", kv)
				}
				s.tags[k] = v
			}
		default:
			return s, fmt.Errorf("unexpected field %q", f)
		}
	}
	return s, nil
}

type weighted struct {
	value, weight float64
}

// peer is a StatsD daemon on 127.0.0.1 for tests.
type peer struct {
	t      *testing.T
	format string
	addr   string
	close  func()
	wg     sync.WaitGroup

	mu       sync.Mutex
	lines    int
	packets  []int // sizes of datagrams or TCP lines
	counters map[string]float64
	gauges   map[string]float64
	timers   map[string][]weighted
	types    map[string]string
	rates    map[float64]int
	errs     []error
}

func key(name string, tags map[string]string) string {
	if len(tags) == 0 {
		return name
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(name)
	for _, k := range keys {
		b.WriteString("," + k + "=" + tags[k])
	}
	return b.String()
}

func newPeer(t *testing.T, format string) *peer {
	return &peer{
		t: t, format: format,
		counters: map[string]float64{}, gauges: map[string]float64{},
		timers: map[string][]weighted{}, types: map[string]string{}, rates: map[float64]int{},
	}
}

// startUDP serves on a free UDP port.
func startUDP(t *testing.T, format string) *peer {
	p := newPeer(t, format)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	require.NoError(t, conn.(*net.UDPConn).SetReadBuffer(4<<20))
	p.addr = conn.LocalAddr().String()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			p.mu.Lock()
			p.packets = append(p.packets, n)
			p.mu.Unlock()
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				p.apply(line)
			}
		}
	}()
	p.close = func() { conn.Close() }
	t.Cleanup(p.stop)
	return p
}

// startTCP serves newline-terminated lines on a TCP port (addr "" picks a
// free one).
func startTCP(t *testing.T, format, addr string) *peer {
	p := newPeer(t, format)
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	p.addr = l.Addr().String()
	var conns sync.Map
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					p.mu.Lock()
					p.packets = append(p.packets, len(sc.Bytes())+1)
					p.mu.Unlock()
					p.apply(sc.Text())
				}
			}()
		}
	}()
	p.close = func() {
		l.Close()
		conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	}
	t.Cleanup(p.stop)
	return p
}

func (p *peer) stop() {
	p.close()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, err := range p.errs {
		p.t.Error(err)
	}
}

func (p *peer) apply(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, err := parseLine(line, p.format)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("line %q refused: %w", line, err))
		return
	}
	p.lines++
	p.rates[s.rate]++
	k := key(s.name, s.tags)
	if prev, ok := p.types[k]; ok && prev != s.typ {
		p.errs = append(p.errs, fmt.Errorf("line %q: %s was a %s before", line, k, prev))
	}
	p.types[k] = s.typ
	switch s.typ {
	case "c":
		p.counters[k] += s.value / s.rate
	case "g":
		if s.sign {
			p.gauges[k] += s.value
		} else {
			p.gauges[k] = s.value
		}
	default:
		p.timers[k] = append(p.timers[k], weighted{s.value, 1 / s.rate})
	}
}

// snapshot returns copies of the aggregates.
func (p *peer) snapshot() (lines int, counters, gauges map[string]float64, timers map[string][]weighted) {
	p.mu.Lock()
	defer p.mu.Unlock()
	counters, gauges, timers = map[string]float64{}, map[string]float64{}, map[string][]weighted{}
	for k, v := range p.counters {
		counters[k] = v
	}
	for k, v := range p.gauges {
		gauges[k] = v
	}
	for k, v := range p.timers {
		timers[k] = slices.Clone(v)
	}
	return p.lines, counters, gauges, timers
}

func (p *peer) packetSizes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.packets)
}

func TestParserIsStrict(t *testing.T) {
	for _, tt := range []struct {
		line, format string
		ok           bool
	}{
		{"a.b:1|c", "none", true},
		{"a.b:1.5|ms|@0.25", "none", true},
		{"a:+1|g", "none", true},
		{"a:-1|g", "none", true},
		{"a:1|c|#k:v,k2:v2", "dogstatsd", true},
		{"a,k=v:1|c", "influxdb", true},
		{"a;k=v:1|c", "graphite", true},
		{"a:1|c|#k:v", "none", false},
		{"a:1e3|c", "none", false},
		{"a:+1|c", "none", false},
		{"a:1|x", "none", false},
		{"a:1", "none", false},
		{"a b:1|c", "none", false},
		{"a:1|c|@2", "none", false},
		{"a:1|c|#k", "dogstatsd", false},
		{"a,k:1|c", "influxdb", false},
		{"", "none", false},
	} {
		_, err := parseLine(tt.line, tt.format)
		require.Equal(t, tt.ok, err == nil, "%q in %s: %v", tt.line, tt.format, err)
	}
}
