//go:build unix

package sysio

import (
	"bytes"
	"errors"
	"syscall"
	"testing"
)

// socketPair returns two connected, non-blocking stream sockets.
func socketPair(t *testing.T) (a, b int) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(fd) })
	}
	return fds[0], fds[1]
}

func TestReadWrite(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	buf := make([]byte, 64)
	if n, err := Read(uintptr(b), buf); !errors.Is(err, syscall.EAGAIN) || n != 0 {
		t.Fatalf("read of an empty socket = %d, %v; want 0, EAGAIN", n, err)
	}
	if n, err := Write(uintptr(a), []byte("hello\r\n")); err != nil || n != 7 {
		t.Fatalf("write = %d, %v", n, err)
	}
	n, err := Read(uintptr(b), buf)
	if err != nil || string(buf[:n]) != "hello\r\n" {
		t.Fatalf("read = %q, %v", buf[:n], err)
	}
	if n, err := Write(uintptr(a), nil); n != 0 || err != nil {
		t.Fatalf("empty write = %d, %v", n, err)
	}
	if n, err := Writev(uintptr(a), [][]byte{[]byte("one "), []byte("two "), []byte("three")}); err != nil || n != 13 {
		t.Fatalf("writev = %d, %v", n, err)
	}
	n, err = Read(uintptr(b), buf)
	if err != nil || string(buf[:n]) != "one two three" {
		t.Fatalf("read after writev = %q, %v", buf[:n], err)
	}
	// Shut down, not closed: the descriptor number must not be reused by
	// a parallel test before the cleanup closes it.
	if err := syscall.Shutdown(a, syscall.SHUT_RDWR); err != nil {
		t.Fatal(err)
	}
	if n, err := Read(uintptr(b), buf); n != 0 || err != nil {
		t.Fatalf("read at end of stream = %d, %v; want 0, nil", n, err)
	}
	if _, err := Write(uintptr(b), []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write to a peer that shut down: %v, want EPIPE", err)
	}
}

// A full socket takes part of a vector write, then nothing (EAGAIN);
// what it took arrives in order.
func TestWritevFull(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	iov := make([][]byte, MaxIov)
	for i := range iov {
		iov[i] = chunk
	}
	var sent int
	for {
		n, err := Writev(uintptr(a), iov)
		if errors.Is(err, syscall.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n <= 0 || n > len(chunk)*MaxIov {
			t.Fatalf("writev wrote %d", n)
		}
		sent += n
		if sent > 64<<20 {
			t.Fatal("the socket never filled up")
		}
	}
	got := 0
	buf := make([]byte, 1<<16)
	for got < sent {
		n, err := Read(uintptr(b), buf)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", got, sent, err)
		}
		for i := range n {
			if buf[i] != chunk[(got+i)%len(chunk)] {
				t.Fatalf("byte %d is %q, want %q", got+i, buf[i], chunk[(got+i)%len(chunk)])
			}
		}
		got += n
	}
}

// The calls at many stack depths: a buffer on the stack must stay where the
// kernel reads it even when a call grows the stack. Without inlining and
// with GODEBUG=efence=1 (go test -gcflags=all=-l), converting a pointer
// outside the system call's own argument list failed here with EFAULT.
func TestCallsAtStackDepths(t *testing.T) {
	t.Parallel()
	a, b := socketPair(t)
	buf := make([]byte, 64)
	var at func(depth int)
	at = func(depth int) {
		if depth > 0 {
			at(depth - 1)
			return
		}
		var x, y [8]byte // on the stack
		x[0], y[0] = 'x', 'y'
		if n, err := Writev(uintptr(a), [][]byte{x[:], y[:]}); err != nil || n != 16 {
			t.Fatalf("writev = %d, %v", n, err)
		}
		if n, err := Read(uintptr(b), buf); err != nil || n != 16 || buf[0] != 'x' || buf[8] != 'y' {
			t.Fatalf("read = %d %q, %v", n, buf[:n], err)
		}
	}
	for depth := range 400 {
		at(depth)
	}
}
