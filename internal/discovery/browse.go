package discovery

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"netchat/internal/mcast"
)

// Server is a chat server heard on the LAN.
type Server struct {
	Beacon
	// Addr is HOST:PORT to dial: the beacon's source address with the
	// announced port (so a beacon cannot point clients at a third host).
	Addr string
	Seen time.Time // when the latest beacon arrived
}

// BrowseConfig configures Browse.
type BrowseConfig struct {
	Group   string        // default DefaultGroup
	Iface   string        // NAME or ADDR; default: the system's choice
	Timeout time.Duration // how long to listen; default 3s

	maxServers int // default MaxServers; tests lower it
	// stopWhen, if set, ends the browse early (nil error) once it holds
	// for the servers heard so far: tests wait for a condition, not for a
	// fixed window.
	stopWhen func([]Server) bool
}

// MaxServers bounds how many distinct servers one Browse keeps: IDs are
// chosen by whoever sends a beacon, so without a bound a flood of beacons
// with fresh IDs would grow the table for the whole timeout. Beacons of
// servers already heard still update them once it is full.
const MaxServers = 1024

// Browse listens to the discovery group for Timeout and returns the
// servers heard, one per ID (the latest beacon wins), sorted by name, then
// ID. Invalid datagrams are ignored. If ctx ends first, Browse returns what
// it has with ctx's error (nil when ctx's deadline was the limit).
func Browse(ctx context.Context, cfg BrowseConfig) ([]Server, error) {
	return browse(ctx, cfg, nil)
}

// browse is Browse; onReady, if set, runs once the group is joined.
func browse(ctx context.Context, cfg BrowseConfig, onReady func()) ([]Server, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.maxServers <= 0 {
		cfg.maxServers = MaxServers
	}
	l, err := mcast.Listen(ctx, mcast.ListenerConfig{Group: cfg.Group, Iface: cfg.Iface})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	if onReady != nil {
		onReady()
	}
	deadline := time.Now().Add(cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = l.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = l.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	found := map[string]Server{}
	buf := make([]byte, MaxBeaconSize+1) // one more, to notice oversized datagrams
	for {
		n, from, err := l.ReadFrom(buf)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return sorted(found), err
			}
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return sorted(found), ctx.Err()
			}
			return sorted(found), nil
		}
		if n > MaxBeaconSize {
			continue
		}
		b, err := ParseBeacon(buf[:n])
		if err != nil {
			continue
		}
		if _, known := found[b.ID]; !known && len(found) >= cfg.maxServers {
			continue
		}
		found[b.ID] = Server{Beacon: b, Addr: dialAddr(from.Addr(), b.Port), Seen: time.Now()}
		if cfg.stopWhen != nil && cfg.stopWhen(sorted(found)) {
			return sorted(found), nil
		}
	}
}

func dialAddr(src netip.Addr, port int) string {
	src = src.Unmap()
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		src = src.WithZone("")
	}
	return net.JoinHostPort(src.String(), strconv.Itoa(port))
}

func sorted(m map[string]Server) []Server {
	out := make([]Server, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Server) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out
}
