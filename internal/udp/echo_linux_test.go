package udp

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestEchoDoesNotAnswerBroadcastSource hands the echo loop a datagram
// whose source is the loopback broadcast address 127.255.255.255 (a real
// peer would have to spoof it) and checks that the reply is refused rather
// than broadcast to every socket on that port. Go enables SO_BROADCAST on
// every UDP socket, so the echo server used to send it.
func TestEchoDoesNotAnswerBroadcastSource(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := ListenEcho(ctx, EchoConfig{Addr: "127.0.0.1:0", BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range s.conns {
			c.Close()
		}
	}()
	// A wildcard socket hears broadcasts to its port.
	hearer := listenClient(t, "0.0.0.0:0")
	port := hearer.LocalAddr().(*net.UDPAddr).Port

	l := s.loops[0]
	payload := []byte("spoofed")
	copy(l.rms[0].Buffers[0], payload)
	l.rms[0].N = len(payload)
	l.rms[0].Addr = &net.UDPAddr{IP: net.IPv4(127, 255, 255, 255), Port: port}
	if err := l.echo(1); err != nil {
		t.Fatal(err)
	}
	if st := l.stats(); st.Echoed != 0 || st.WriteErrors != 1 {
		t.Errorf("stats %+v, want the reply refused", st)
	}
	// A broadcast reply would be queued on the hearer before a marker
	// sent after it: the first datagram it reads must be the marker.
	marker := listenClient(t, "127.0.0.1:0")
	if _, err := marker.WriteToUDP([]byte("marker"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Fatal(err)
	}
	_ = hearer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, from, err := hearer.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "marker" {
		t.Fatalf("the hearer read %q from %v (%v) before the marker: the echo server broadcast its reply", buf[:n], from, err)
	}
}
