package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// helperDirEnv tells the test binary, re-executed by TestCrashKill9, to act
// as the writer process and where to write.
const helperDirEnv = "NETCHAT_HISTORY_HELPER_DIR"

// TestHelperWriter is the child process of TestCrashKill9: it records
// events as fast as it can until it is killed.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestCrashKill9")
	}
	tr, err := Open(Options{
		Dir:           dir,
		FsyncInterval: 10 * time.Millisecond,
		MaxSize:       32 << 10,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Should the parent die without killing us, stop on our own.
	for i, end := 0, time.Now().Add(30*time.Second); time.Now().Before(end); i++ {
		kind := KindMsg
		if i%3 == 0 {
			kind = KindJoin
		}
		tr.Record(Event{Time: time.Now(), Kind: kind, Nick: "crash", Text: fmt.Sprint(i), Node: "child"})
		if i%64 == 0 {
			// Leave the writer some room so that most events land on disk
			// rather than being dropped.
			time.Sleep(50 * time.Microsecond)
		}
	}
	t.Fatal("was not killed within 30s")
}

func TestCrashKill9(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// Kill it in full flow, after it has rotated a few times.
	waitFor(t, 20*time.Second, "the child to write and rotate", func() bool {
		rotated, _ := rotatedFiles(dir)
		return len(rotated) >= 3 && lineCount(filepath.Join(dir, CurrentName)) > 10
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != -1 {
		t.Fatalf("child did not die from the signal: %v\n%s", err, out.Bytes())
	}

	// Every line parses, except possibly a torn last line of the current
	// file; records keep their order.
	var msgs []Event
	last := -1
	files := transcriptFiles(t, dir)
	for fi, p := range files {
		if _, err := os.Stat(p); err != nil && fi == len(files)-1 {
			// Killed between renaming the old file and creating the new.
			t.Logf("no current file: %v", err)
			continue
		}
		lines, terminated := readLines(t, p)
		for i, l := range lines {
			var ev Event
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				if fi == len(files)-1 && i == len(lines)-1 {
					t.Logf("torn last line (terminated=%v): %.40q", terminated, l)
					continue
				}
				t.Fatalf("%s line %d does not parse: %v", p, i+1, err)
			}
			var seq int
			if _, err := fmt.Sscan(ev.Text, &seq); err != nil || seq <= last {
				t.Fatalf("%s line %d: sequence %q after %d", p, i+1, ev.Text, last)
			}
			last = seq
			if ev.Kind == KindMsg {
				msgs = append(msgs, ev)
			}
		}
	}

	log, logs := newLogger()
	tr := mustOpen(t, Options{Dir: dir, Recent: 50, Logger: log})
	got := tr.Recent(50)
	if len(msgs) < 50 {
		t.Fatalf("only %d messages survived", len(msgs))
	}
	sameEvents(t, got, msgs[len(msgs)-50:])
	if strings.Contains(logs.String(), "unparsable") {
		t.Errorf("read-back found damage beyond a torn tail:\n%s", logs)
	}
	// Appending after the crash keeps the file readable.
	tr.Record(Event{Kind: KindMsg, Nick: "after", Text: "restart"})
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	tr = mustOpen(t, Options{Dir: dir, Recent: 1})
	if got := tr.Recent(1); len(got) != 1 || got[0].Nick != "after" {
		t.Errorf("after restart and append Recent(1) = %+v", got)
	}
}
