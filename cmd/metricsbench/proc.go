package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// procCPU returns the CPU time (user + system, all threads) of process pid.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU extracts utime+stime from the contents of /proc/PID/stat.
func parseStatCPU(b []byte) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc stat: %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("malformed /proc stat: %q", b)
	}
	utime, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// procStatusKiB returns a "Key: N kB" value of /proc/PID/status, e.g.
// VmHWM (peak resident set size).
func procStatusKiB(pid int, key string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s not in /proc/%d/status", key, pid)
}

// cpuInfo returns the number of CPUs of this machine (not only those this
// process may use) and their model name, from /proc/cpuinfo.
func cpuInfo() (n int, model string) {
	model = "unknown model"
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0, model
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
		if v, ok := strings.CutPrefix(line, "model name"); ok && n == 1 {
			model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return n, model
}

// cpuBusy returns the busy time (all but idle and iowait) of CPU cpu from
// /proc/stat, to see what else ran on the server's CPU.
func cpuBusy(cpu int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	prefix := "cpu" + strconv.Itoa(cpu) + " "
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		var busy int64
		for i, f := range strings.Fields(rest) {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/stat %s: %w", prefix, err)
			}
			// user nice system idle iowait irq softirq steal guest guest_nice;
			// guest time is already in user.
			if i == 3 || i == 4 || i >= 8 {
				continue
			}
			busy += v
		}
		return time.Duration(busy) * time.Second / clockTicks, nil
	}
	return 0, fmt.Errorf("%snot in /proc/stat", prefix)
}
