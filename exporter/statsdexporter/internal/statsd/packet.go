package statsd

// Pack joins entries with '\n' into payloads of at most maxSize bytes, in
// order. An entry longer than maxSize gets a payload of its own (the caller
// decides whether to send it). With terminate, every entry ends with '\n'
// (stream transports need the last line terminated too).
func Pack(entries []string, maxSize int, terminate bool) (payloads [][]byte, oversize int) {
	var cur []byte
	flush := func() {
		if len(cur) > 0 {
			payloads = append(payloads, cur)
			cur = nil
		}
	}
	for _, e := range entries {
		n := len(e)
		if terminate {
			n++
		}
		if n > maxSize {
			flush()
			oversize++
			p := []byte(e)
			if terminate {
				p = append(p, '\n')
			}
			payloads = append(payloads, p)
			continue
		}
		sep := 0
		if len(cur) > 0 && !terminate {
			sep = 1
		}
		if len(cur)+sep+n > maxSize {
			flush()
			sep = 0
		}
		if sep == 1 {
			cur = append(cur, '\n')
		}
		cur = append(cur, e...)
		if terminate {
			cur = append(cur, '\n')
		}
	}
	flush()
	return payloads, oversize
}
