package main

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"netchat/internal/discovery"
	"netchat/internal/mcast/mcasttest"
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
