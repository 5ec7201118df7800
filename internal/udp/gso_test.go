//go:build linux

package udp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// segmentingBatch records replies like the kernel would deliver them:
// a message with a UDP_SEGMENT control message becomes several datagrams.
type segmentingBatch struct {
	out     []string // "payload@addr"
	entries int
	refuse  bool // fail GSO messages like a device without offload
}

func (f *segmentingBatch) ReadBatch([]ipv4.Message, int) (int, error) { return 0, nil }

func (f *segmentingBatch) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	for i, m := range ms {
		ap, _ := addrPortOf(m.Addr)
		p := m.Buffers[0]
		size := len(p)
		if m.OOB != nil {
			if f.refuse {
				return i, unix.EIO
			}
			size = int(binary.NativeEndian.Uint16(m.OOB[unix.CmsgLen(0):]))
		}
		f.entries++
		for len(p) > 0 || size == 0 {
			n := min(size, len(p))
			f.out = append(f.out, string(p[:n])+"@"+ap.String())
			p = p[n:]
			if size == 0 {
				break
			}
		}
	}
	return len(ms), nil
}

func TestEchoGSOPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      []ipv4.Message
		refuse  bool
		entries int
	}{
		{"one destination, equal sizes: one entry", []ipv4.Message{
			msg("aa", "127.0.0.1:5000"), msg("bb", "127.0.0.1:5000"), msg("cc", "127.0.0.1:5000"),
		}, false, 1},
		{"interleaved destinations keep per-destination order", []ipv4.Message{
			msg("a1", "127.0.0.1:5000"), msg("b1", "127.0.0.1:6000"), msg("a2", "127.0.0.1:5000"), msg("b2", "127.0.0.1:6000"),
		}, false, 2},
		{"a different size ends the run", []ipv4.Message{
			msg("a1", "127.0.0.1:5000"), msg("long", "127.0.0.1:5000"), msg("a3", "127.0.0.1:5000"),
		}, false, 3},
		{"empty datagrams are not coalesced", []ipv4.Message{
			msg("", "127.0.0.1:5000"), msg("", "127.0.0.1:5000"),
		}, false, 2},
		{"large datagrams are not coalesced", []ipv4.Message{
			msg(strings.Repeat("x", gsoMaxSegment+1), "127.0.0.1:5000"), msg(strings.Repeat("y", gsoMaxSegment+1), "127.0.0.1:5000"),
		}, false, 2},
		{"refused offload falls back to single datagrams", []ipv4.Message{
			msg("aa", "127.0.0.1:5000"), msg("bb", "127.0.0.1:5000"), msg("cc", "127.0.0.1:6000"),
		}, true, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := newTestLoop(EchoConfig{BatchSize: 8})
			if !l.gso {
				t.Skip("kernel without UDP_SEGMENT")
			}
			f := &segmentingBatch{refuse: tt.refuse}
			n, _ := (&fakeBatch{in: tt.in}).ReadBatch(l.rms, 0)
			l.conn = f
			if err := l.echo(n); err != nil {
				t.Fatal(err)
			}
			// Per destination, the replies must be the requests in order.
			want := map[string][]string{}
			for _, m := range tt.in {
				ap, _ := addrPortOf(m.Addr)
				want[ap.String()] = append(want[ap.String()], string(m.Buffers[0]))
			}
			got := map[string][]string{}
			for _, o := range f.out {
				p, a, _ := strings.Cut(o, "@")
				got[a] = append(got[a], p)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("replies %v, want %v", got, want)
			}
			if f.entries != tt.entries {
				t.Errorf("%d sendmmsg entries, want %d", f.entries, tt.entries)
			}
			if st := l.stats(); st.Echoed != uint64(len(tt.in)) || st.WriteErrors != 0 {
				t.Errorf("stats %+v", st)
			}
			if tt.refuse && l.gso {
				t.Error("GSO still on after the kernel refused it")
			}
		})
	}
}

// TestEchoBurstOverLoopback sends bursts that the server reads in batches,
// so replies go out coalesced where the kernel supports it; every reply
// must still be the identical datagram, in order.
func TestEchoBurstOverLoopback(t *testing.T) {
	t.Parallel()
	s := startEcho(t, EchoConfig{Addr: "127.0.0.1:0"})
	c := listenClient(t, "127.0.0.1:0")
	_ = c.SetReadBuffer(1 << 20)
	const burst = 64
	sizes := []int{64, 64, 64, 100, 64, 1}
	buf := make([]byte, 2048)
	for round := range 5 {
		var sent [][]byte
		for i := range burst {
			p := bytes.Repeat([]byte{byte(i)}, sizes[i%len(sizes)])
			p[0] = byte(round)
			sent = append(sent, p)
			if _, err := c.WriteToUDPAddrPort(p, s.Addrs()[0]); err != nil {
				t.Fatal(err)
			}
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := range burst {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				t.Fatalf("round %d reply %d: %v", round, i, err)
			}
			if from != netip.AddrPortFrom(s.Addrs()[0].Addr(), s.Addrs()[0].Port()) || !bytes.Equal(buf[:n], sent[i]) {
				t.Fatalf("round %d reply %d: %d bytes from %v, not the datagram sent in that place", round, i, n, from)
			}
		}
	}
}

// TestEchoFullBatchOfLargeSegments queues a whole batch of equal,
// maximum-segment datagrams from one source before the server reads, so
// one read gets them all and they form one coalesced reply. 64 × 1200
// bytes is more than one UDP send may carry: the kernel refused it with
// EMSGSIZE and every one of the 64 replies was lost.
func TestEchoFullBatchOfLargeSegments(t *testing.T) {
	t.Parallel()
	for _, fam := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(fam, func(t *testing.T) {
			t.Parallel()
			if fam[0] == '[' {
				if c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err != nil {
					t.Skipf("IPv6 loopback unavailable: %v", err)
				} else {
					c.Close()
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			s, err := ListenEcho(ctx, EchoConfig{Addr: fam})
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			c := listenClient(t, fam)
			_ = c.SetReadBuffer(1 << 20)
			const n = 64
			for i := range n {
				p := bytes.Repeat([]byte{byte(i)}, gsoMaxSegment)
				if _, err := c.WriteToUDPAddrPort(p, s.Addrs()[0]); err != nil {
					cancel()
					t.Fatal(err)
				}
			}
			done := make(chan error, 1)
			go func() { done <- s.Serve(ctx) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("Serve: %v", err)
				}
			}()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2048)
			for i := range n {
				m, _, err := c.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("reply %d: %v (stats %+v)", i, err, s.Stats())
				}
				if m != gsoMaxSegment || buf[0] != byte(i) || buf[m-1] != byte(i) {
					t.Fatalf("reply %d: %d bytes starting %d, not datagram %d", i, m, buf[0], i)
				}
			}
		})
	}
}
