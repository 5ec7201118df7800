package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"netchat/internal/discovery"
	"netchat/internal/mcast/mcasttest"
)

func TestDiscoverCommand(t *testing.T) {
	t.Parallel()
	mcasttest.Loopback(t)
	group := mcasttest.GroupV4(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	annCtx, stopAnn := context.WithCancel(ctx)
	defer stopAnn()
	for i, name := range []string{"one", "two"} {
		go func() {
			_ = discovery.Announce(annCtx, discovery.AnnouncerConfig{
				Group: group, Iface: "lo", Interval: 30 * time.Millisecond,
				ID: name, Name: name, Version: "t", Port: 9100 + i, Online: func() int { return i + 1 },
			})
		}()
	}
	out, _, err := execSub(ctx, newDiscoverCmd(), "", "--group", group, "--iface", "lo", "--timeout", "600ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var got []struct {
		Name   string `json:"name"`
		Addr   string `json:"addr"`
		Online int    `json:"online"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if len(got) != 2 || got[0].Name != "one" || got[1].Name != "two" {
		t.Fatalf("discover --json: %q", out)
	}
	for i, s := range got {
		if want := fmt.Sprintf("127.0.0.1:%d", 9100+i); s.Addr != want || s.Online != i+1 {
			t.Errorf("server %d: %+v, want addr %s online %d", i, s, want, i+1)
		}
	}
	table, _, err := execSub(ctx, newDiscoverCmd(), "", "--group", group, "--iface", "lo", "--timeout", "300ms")
	if err != nil || !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "127.0.0.1:9101") {
		t.Errorf("discover table %q, %v", table, err)
	}
}
