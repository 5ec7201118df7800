package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"testing"

	"netchat/internal/dirlock"
	"netchat/internal/syncbuf"
)

// TestServeDataDirLocked: a second server on a --data-dir in use is
// refused with one sentence naming the directory and the holder, before it
// listens; once the first has stopped, the same directory can be used.
func TestServeDataDirLocked(t *testing.T) {
	t.Parallel()
	if !dirlock.Enforced {
		t.Skip("no flock on this system")
	}
	dir := t.TempDir()
	o := testServeOptions()
	o.dataDir = dir
	first := startServeLogged(t, o)

	second := testServeOptions()
	second.dataDir = dir
	listened := false
	ctx, cancel := context.WithTimeout(context.Background(), histWait)
	defer cancel()
	err := runServe(ctx, second, &syncbuf.Buffer{}, func(string, net.Addr) { listened = true })
	want := "data directory " + dir + " is in use by another netchat process (pid " + strconv.Itoa(os.Getpid()) + ")"
	if err == nil || err.Error() != want {
		t.Fatalf("second server: %v, want %q", err, want)
	}
	if listened {
		t.Error("the refused server listened before refusing")
	}

	first.stop()
	third := startServeLogged(t, second)
	u := chatJoin(t, third.addrs["chat"], "alice")
	u.c.Close()
}
