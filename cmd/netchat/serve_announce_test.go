package main

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"netchat/internal/discovery"
	"netchat/internal/mcast/mcasttest"
	"netchat/internal/syncbuf"
)

// TestServeAnnounce: `serve --announce` on lo is found by discovery with
// its real port, and the online count in its beacons follows the room.
func TestServeAnnounce(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	o := testServeOptions()
	o.name = "announce-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	o.announce = true
	o.announceIface = "lo"
	o.announceInterval = 50 * time.Millisecond
	addrs := startServe(t, o)
	_, portStr, _ := net.SplitHostPort(addrs["chat"])
	port, _ := strconv.Atoi(portStr)

	find := func(online int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			servers, err := discovery.Browse(context.Background(), discovery.BrowseConfig{Iface: "lo", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range servers {
				if s.Name == o.name && s.Port == port && s.Online == online {
					return
				}
			}
		}
		t.Fatalf("no beacon from %s (port %d) with %d online", o.name, port, online)
	}
	find(0)
	c, err := net.Dial("tcp", addrs["chat"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("beaconer\n")); err != nil {
		t.Fatal(err)
	}
	find(1)
}

// TestServeAnnounceBadIfaceBeforeListening: an announce interface that
// cannot be used stops start-up with one sentence before the server says
// (or reports to anyone) that it is listening, and it never accepts a
// connection.
func TestServeAnnounceBadIfaceBeforeListening(t *testing.T) {
	t.Parallel()
	o := testServeOptions()
	o.logLevel = "info"
	o.announce = true
	o.announceIface = "nosuchif0"
	var logs syncbuf.Buffer
	var announced []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := runServe(ctx, o, &logs, func(kind string, _ net.Addr) { announced = append(announced, kind) })
	if err == nil || !strings.Contains(err.Error(), "--announce") || !strings.Contains(err.Error(), "nosuchif0") {
		t.Fatalf("runServe: %v, want an --announce error naming the interface", err)
	}
	if strings.Contains(logs.String(), "listening") || len(announced) != 0 {
		t.Errorf("a server that refused to start said it listens: log %q, reported %v", logs.String(), announced)
	}
}
