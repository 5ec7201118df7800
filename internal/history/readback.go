package history

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	stampLayout = "20060102T150405"
	// readChunk is the read-back unit when walking a file from its end.
	readChunk = 64 << 10
	// maxLineLen bounds the memory one line may take during read-back. The
	// room caps a message at a few KiB, so anything longer is corruption.
	maxLineLen = 1 << 20
)

// load reads the newest files backwards until it has want "msg"/"me"
// events, and reports whether the current file ends mid-line. It reads
// backwards so that start-up costs what Recent needs, not the size of the
// transcript.
func load(dir string, cur *os.File, size int64, want int, h *Hygiene, log *slog.Logger) (recent []Event, midLine bool, err error) {
	var newestFirst []Event
	keep := func(*Event) bool { return true }
	if h != nil {
		var c hygieneCheck
		defer c.report(h)
		keep = func(ev *Event) bool { return c.pass(h, ev) }
	}
	// The current file's last line is always examined, even when nothing is
	// wanted, so that a torn tail is reported and handled.
	midLine, err = scanFile(cur, CurrentName, size, want, keep, &newestFirst, log)
	if err != nil {
		return nil, false, fmt.Errorf("history: reading %s: %w", cur.Name(), err)
	}
	if len(newestFirst) < want {
		rotated, err := rotatedFiles(dir)
		if err != nil {
			return nil, false, fmt.Errorf("history: listing %s: %w", dir, err)
		}
		for i := len(rotated) - 1; i >= 0 && len(newestFirst) < want; i-- {
			// A damaged old file should not keep the chat server from
			// starting; it only costs some history.
			if err := scanPath(filepath.Join(dir, rotated[i]), want, keep, &newestFirst, log); err != nil {
				log.Warn("cannot read rotated transcript, older history skipped", "file", rotated[i], "err", err)
				break
			}
		}
	}
	slices.Reverse(newestFirst)
	return newestFirst, midLine, nil
}

func scanPath(path string, want int, keep func(*Event) bool, out *[]Event, log *slog.Logger) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = scanFile(f, filepath.Base(path), st.Size(), want, keep, out, log)
	return err
}

// scanFile appends the file's "msg"/"me" events that keep passes to out,
// newest first, until out holds want. It reports whether the file ends
// without a newline.
func scanFile(f io.ReaderAt, name string, size int64, want int, keep func(*Event) bool, out *[]Event, log *slog.Logger) (midLine bool, err error) {
	var (
		last           = true
		bad            int
		firstBadAt     int64
		unknown        int
		firstUnknownAt int64
		unknownKind    string
	)
	err = scanLinesBackward(f, size, readChunk, func(off int64, line []byte, terminated, tooLong bool) bool {
		isLast := last
		last = false
		if isLast && !terminated {
			midLine = true
		}
		if !tooLong && len(bytes.TrimSpace(line)) == 0 {
			return true
		}
		var ev Event
		var perr error
		if tooLong {
			perr = fmt.Errorf("line longer than %d bytes", maxLineLen)
		} else {
			perr = json.Unmarshal(line, &ev)
		}
		switch {
		case isLast && perr != nil:
			log.Warn("torn last line in transcript skipped", "file", name, "offset", off, "err", perr)
			return len(*out) < want
		case isLast && !terminated:
			// A short write stopped right before the newline: the record
			// itself is whole, and once the next append closes the line it
			// will read back anyway, so keep it now for consistency.
			log.Warn("last line of transcript lacks its newline; the record is complete and kept", "file", name, "offset", off)
		case perr != nil:
			bad++
			firstBadAt = off // walking backwards, the last one seen is the first in the file
			return len(*out) < want
		}
		switch ev.Kind {
		case KindMsg, KindMe:
			if len(*out) >= want {
				return false
			}
			if keep(&ev) {
				*out = append(*out, ev)
			}
		case KindJoin, KindLeave, KindNick:
		default:
			// Not written by netchat: a newer version's kind, or a
			// hand-edited file. Never replayed, never silently.
			unknown++
			firstUnknownAt, unknownKind = off, ev.Kind
		}
		return len(*out) < want
	})
	if bad > 0 {
		log.Warn("unparsable lines in transcript skipped", "file", name, "lines", bad, "first_offset", firstBadAt)
	}
	if unknown > 0 {
		log.Warn("transcript lines with an unknown kind skipped", "file", name, "lines", unknown,
			"first_offset", firstUnknownAt, "kind", unknownKind)
	}
	return midLine, err
}

// scanLinesBackward calls fn for each line of the first size bytes of f,
// last line first, until fn returns false. line excludes the '\n' and is
// only valid during the call; off is where it starts; terminated is false
// only for a final line without '\n'. A line longer than maxLineLen is
// passed as tooLong with a nil line.
func scanLinesBackward(f io.ReaderAt, size, chunkSize int64, fn func(off int64, line []byte, terminated, tooLong bool) bool) error {
	buf := make([]byte, min(size, chunkSize))
	var carry []byte // the tail of the current line, read in an earlier chunk
	carryLen := 0    // length of that tail, also when it is too long to keep
	end := size      // where the current line's content ends
	pos := size
	for pos > 0 {
		n := min(int64(len(buf)), pos)
		pos -= n
		chunk := buf[:n]
		if _, err := f.ReadAt(chunk, pos); err != nil && err != io.EOF {
			return err
		}
		hi := len(chunk) // the current line's part of chunk is chunk[i+1:hi]
		for {
			i := bytes.LastIndexByte(chunk[:hi], '\n')
			if i < 0 {
				break
			}
			start := pos + int64(i) + 1
			if start != size || end != size { // skip the empty tail after a final '\n'
				var line []byte
				tooLong := carryLen+hi-(i+1) > maxLineLen
				if !tooLong {
					if carryLen == 0 {
						line = chunk[i+1 : hi]
					} else {
						line = append(append(make([]byte, 0, hi-(i+1)+len(carry)), chunk[i+1:hi]...), carry...)
					}
				}
				if !fn(start, line, end != size, tooLong) {
					return nil
				}
			}
			carry, carryLen = carry[:0], 0
			end = start - 1
			hi = i
		}
		// chunk[:hi] belongs to a line that starts in an earlier chunk.
		carryLen += hi
		if carryLen <= maxLineLen {
			carry = append(append(make([]byte, 0, carryLen), chunk[:hi]...), carry...)
		} else {
			carry = nil
		}
	}
	if size > 0 {
		var line []byte
		tooLong := carryLen > maxLineLen
		if !tooLong {
			line = carry
		}
		fn(0, line, end != size, tooLong)
	}
	return nil
}

// rotatedFiles lists the rotated transcripts in dir, oldest first. The
// order comes from the name, not from modification times, which copying or
// restoring a backup would change.
func rotatedFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type rotated struct {
		name  string
		stamp time.Time
		seq   int
	}
	var files []rotated
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		stamp, seq, ok := parseRotatedName(e.Name())
		if ok {
			files = append(files, rotated{e.Name(), stamp, seq})
		}
	}
	slices.SortFunc(files, func(a, b rotated) int {
		if c := a.stamp.Compare(b.stamp); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	return names, nil
}

// parseRotatedName parses "transcript-STAMP.jsonl" and
// "transcript-STAMP-SEQ.jsonl".
func parseRotatedName(name string) (stamp time.Time, seq int, ok bool) {
	rest, ok := strings.CutPrefix(name, "transcript-")
	if !ok {
		return time.Time{}, 0, false
	}
	rest, ok = strings.CutSuffix(rest, ".jsonl")
	if !ok {
		return time.Time{}, 0, false
	}
	if s, n, found := strings.Cut(rest, "-"); found {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return time.Time{}, 0, false
		}
		rest, seq = s, v
	}
	stamp, err := time.Parse(stampLayout, rest)
	if err != nil {
		return time.Time{}, 0, false
	}
	return stamp, seq, true
}
