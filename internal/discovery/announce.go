package discovery

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"netchat/internal/mcast"
)

// AnnouncerConfig configures Announce.
type AnnouncerConfig struct {
	Group    string        // default DefaultGroup
	Iface    string        // NAME or ADDR; default: the system's choice
	Interval time.Duration // default 2s
	// ID identifies the server across beacons (default: random per call);
	// Name is shown to users (default: the host name).
	ID, Name, Version string
	Port, TLSPort     int
	// Online reports the current number of users; nil means 0.
	Online func() int
	Logger *slog.Logger
}

// Announce multicasts a beacon at once and then every Interval until ctx
// is done, and returns nil then. Setup errors (bad group or interface,
// invalid beacon fields) are returned immediately; send errors later on
// are logged and retried at the next interval, since a network that comes
// and goes must not stop the chat server.
func Announce(ctx context.Context, cfg AnnouncerConfig) error {
	a, err := NewAnnouncer(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Announcer sends beacons; NewAnnouncer sets it up, Run sends.
type Announcer struct {
	cfg    AnnouncerConfig
	beacon Beacon
	s      *mcast.Sender
}

// NewAnnouncer validates cfg and opens the multicast socket, so that a
// caller learns of a bad group or interface before it starts serving.
func NewAnnouncer(cfg AnnouncerConfig) (*Announcer, error) {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.ID == "" {
		cfg.ID = randomID()
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
		if len(cfg.Name) > maxNameLen {
			cfg.Name = cfg.Name[:maxNameLen]
		}
	}
	if cfg.Online == nil {
		cfg.Online = func() int { return 0 }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	beacon := Beacon{
		Service: Service, ID: cfg.ID, Name: cfg.Name, Version: cfg.Version,
		Port: cfg.Port, TLSPort: cfg.TLSPort,
	}
	if _, err := beacon.Marshal(); err != nil {
		return nil, err
	}
	s, err := mcast.NewSender(mcast.SenderConfig{
		Group:    cfg.Group,
		Iface:    cfg.Iface,
		TTL:      1,
		Loopback: true, // clients on this host must find it too
	})
	if err != nil {
		return nil, err
	}
	return &Announcer{cfg: cfg, beacon: beacon, s: s}, nil
}

// Run sends a beacon every interval until ctx is done, then closes the
// socket and returns nil. Send errors are logged, not returned.
func (a *Announcer) Run(ctx context.Context) error {
	cfg, beacon, s := a.cfg, a.beacon, a.s
	defer s.Close()
	cfg.Logger.Info("announcing on the LAN", "group", s.Group().String(), "interval", cfg.Interval, "id", cfg.ID)

	failing := false
	for {
		beacon.Online = max(0, cfg.Online())
		p, err := beacon.Marshal()
		if err == nil {
			err = s.Send(p)
		}
		switch {
		case err != nil && !failing:
			// Logged once per outage, not once per beacon.
			cfg.Logger.Warn("announce failed", "err", err)
			failing = true
		case err == nil && failing:
			cfg.Logger.Info("announce works again")
			failing = false
		}
		// ±10% jitter keeps servers started together from beaconing in step.
		d := cfg.Interval + time.Duration((rand.Float64()-0.5)*0.2*float64(cfg.Interval))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func randomID() string {
	var b [8]byte
	_, _ = cryptorand.Read(b[:])
	return hex.EncodeToString(b[:])
}
