package sysio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a wrapped client connection and the server's end, over
// loopback TCP.
func pair(t *testing.T) (wrapped, peer net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	p, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	w := WrapConn(c)
	if _, ok := w.(*conn); !ok {
		t.Fatalf("WrapConn(%T) = %T, want the raw connection", c, w)
	}
	t.Cleanup(func() { w.Close(); p.Close() })
	return w, p
}

// Bytes written through the wrapper arrive whole and in order, even when
// the peer reads slowly (the writer waits in the poller for room), and
// the wrapper reads what the peer sends.
func TestConnRoundTrip(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	const size = 8 << 20 // far beyond the socket buffers
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i*7 + i>>11)
	}
	errc := make(chan error, 1)
	go func() {
		n, err := w.Write(data)
		if err == nil && n != size {
			err = io.ErrShortWrite
		}
		errc <- err
	}()
	p.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, size)
	if _, err := io.ReadFull(p, got); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes read differ from the bytes written")
	}

	if _, err := p.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	w.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := io.ReadAtLeast(w, buf, 6)
	if err != nil || string(buf[:n]) != "PING\r\n" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// A read deadline ends a read that waits, with the error net.Conn gives;
// the peer closing gives io.EOF; a closed connection says so.
func TestConnErrors(t *testing.T) {
	t.Parallel()
	w, p := pair(t)
	buf := make([]byte, 16)

	w.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	_, err := w.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("read past the deadline: %#v, want a net.OpError for read", err)
	}

	w.SetReadDeadline(time.Now().Add(10 * time.Second))
	p.Close()
	if n, err := w.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read after the peer closed = %d, %v; want 0, EOF", n, err)
	}

	w.Close()
	if _, err := w.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed connection: %v, want net.ErrClosed", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write to a closed connection: %v, want net.ErrClosed", err)
	}
}

// A write to a peer that reads nothing waits for room until its
// deadline, then says how much went out, with a timeout.
func TestConnWriteDeadline(t *testing.T) {
	t.Parallel()
	w, _ := pair(t)
	data := make([]byte, 64<<20)
	w.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := w.Write(data)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write = %d, %v; want a timeout", n, err)
	}
	if n <= 0 || n >= 64<<20 {
		t.Fatalf("write took %d bytes before its deadline, want part of them", n)
	}
}

// A connection that is not TCP is used as it is.
func TestWrapConnOther(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := WrapConn(a); got != a {
		t.Fatalf("WrapConn(pipe) = %T, want the pipe itself", got)
	}
}
