package main

import (
	"bufio"
	"net"
	"testing"
)

// TestServeLogFloodThrottled: a burst of connections logs at most
// --log-limit "connect" lines per second; the rest are counted in
// "log lines suppressed" summaries (at the latest when the server stops),
// so every connection is accounted for and none is logged silently away.
func TestServeLogFloodThrottled(t *testing.T) {
	t.Parallel()
	const conns = 50
	o := testServeOptions()
	o.logFormat = "json"
	o.logLevel = "info"
	o.logLimit = 3
	o.maxConns = 0
	s := startServeLogged(t, o)
	for range conns {
		c, err := net.DialTimeout("tcp", s.addrs["chat"], histWait)
		if err != nil {
			t.Fatal(err)
		}
		// The greeting comes after the "connect" line is logged.
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	s.stop()
	passed, suppressed, summaries := 0, 0, 0
	for _, r := range logRecords(t, s.logs.String()) {
		switch {
		case r["msg"] == "connect":
			passed++
		case r["msg"] == "log lines suppressed" && r["message"] == "connect":
			summaries++
			suppressed += int(r["suppressed"].(float64))
			if r["level"] != "INFO" || r["interval"] != "1s" {
				t.Errorf("summary %v", r)
			}
		}
	}
	if passed+suppressed != conns {
		t.Errorf("%d connect lines + %d suppressed = %d, want %d", passed, suppressed, passed+suppressed, conns)
	}
	// Unless the machine took over 16s for 50 connections, some were cut.
	if summaries == 0 || passed >= conns {
		t.Errorf("%d connect lines logged of %d, %d summaries: not throttled", passed, conns, summaries)
	}
}
