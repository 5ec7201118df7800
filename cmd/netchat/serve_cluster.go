package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"netchat/internal/chat"
	"netchat/internal/cluster"
)

// clusterOptions are serve's --cluster flags (SPEC §6).
type clusterOptions struct {
	urls    string
	creds   string
	tls     bool
	ca      string
	nodeTTL time.Duration
}

func addClusterFlags(f *pflag.FlagSet, o *clusterOptions) {
	f.StringVar(&o.urls, "cluster", "", "join a cluster of netchat servers through NATS: nats://[USER:PASS@]HOST:PORT[,HOST:PORT...] (JetStream on; nats-server 2.9 or later)")
	f.StringVar(&o.creds, "cluster-creds", "", "with --cluster: NATS credentials file (JWT and nkey seed)")
	f.BoolVar(&o.tls, "cluster-tls", false, "with --cluster: require TLS to the NATS servers")
	f.StringVar(&o.ca, "cluster-ca", "", "with --cluster: PEM file of the CAs to trust for the NATS servers (implies --cluster-tls)")
	f.DurationVar(&o.nodeTTL, "cluster-node-ttl", 30*time.Second, "with --cluster: a node silent this long is taken for dead; its users leave and their nicknames are free")
}

// check validates the flags before anything starts.
func (o *clusterOptions) check() error {
	if o.urls == "" {
		if o.creds != "" || o.tls || o.ca != "" {
			return usagef("--cluster-creds, --cluster-tls and --cluster-ca need --cluster")
		}
		return nil
	}
	for _, s := range strings.Split(o.urls, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return usagef("--cluster %q: empty server address", o.urls)
		}
		if !strings.Contains(s, "://") {
			s = "nats://" + s
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return usagef("--cluster: %q is not a NATS server address (nats://HOST:PORT)", s)
		}
		switch u.Scheme {
		case "nats", "tls":
		default:
			return usagef("--cluster: %q: the scheme must be nats:// or tls://", s)
		}
	}
	if o.nodeTTL < 100*time.Millisecond {
		return usagef("--cluster-node-ttl must be at least 100ms")
	}
	return nil
}

type clusterNode struct {
	node *cluster.Node
	room *chat.Room
}

// startCluster connects to NATS and returns a room linked to the cluster.
func startCluster(ctx context.Context, o *clusterOptions, name string, maxLine int, cfg chat.Config,
	reg *prometheus.Registry, logger *slog.Logger) (*clusterNode, error) {
	opts := cluster.Options{
		URLs:    o.urls,
		Name:    name,
		Creds:   o.creds,
		TLS:     o.tls,
		CA:      o.ca,
		NodeTTL: o.nodeTTL,
		MaxLine: maxLine,
		Logger:  logger,
	}
	if reg != nil {
		opts.Metrics = reg
	}
	n, err := cluster.Connect(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	room := chat.NewClusterRoom(cfg, n)
	if err := n.Start(ctx, room); err != nil {
		_ = n.Close(context.Background())
		return nil, fmt.Errorf("--cluster: %w", err)
	}
	logger.Info("cluster joined", "node", name, "online", room.Online())
	return &clusterNode{node: n, room: room}, nil
}

// close leaves the cluster, after the chat server has shut down.
func (c *clusterNode) close(logger *slog.Logger, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.node.Close(ctx); err != nil {
		logger.Warn("leaving the cluster", "err", err)
	}
}
