package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"netchat/internal/discovery"
)

// Discover finds a chat server on the LAN for `netchat join` without an
// address (SPEC §3) and returns the address to dial. With useTLS only
// servers that announce a TLS port qualify, and that port is returned.
// One server is taken as is; among several the user chooses on the
// terminal, or, when stdin is not a terminal, the list goes to stderr and
// an error asks for an explicit address.
func Discover(ctx context.Context, cfg discovery.BrowseConfig, useTLS bool, stdin io.Reader, stderr io.Writer) (string, error) {
	ask := isTerminal(stdin)
	if ask {
		// Browsing takes the whole timeout; say why nothing happens.
		fmt.Fprintf(stderr, "looking for netchat servers on the LAN for %s...\n", cmp.Or(cfg.Timeout, 3*time.Second))
	}
	servers, err := discovery.Browse(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return "", errInterrupted
		}
		return "", fmt.Errorf("LAN discovery failed: %v", unwrapOp(err))
	}
	var found []found
	for _, s := range servers {
		addr := s.Addr
		if useTLS {
			if s.TLSPort == 0 {
				continue
			}
			host, _, err := net.SplitHostPort(s.Addr)
			if err != nil {
				continue
			}
			addr = net.JoinHostPort(host, strconv.Itoa(s.TLSPort))
		}
		found = append(found, foundServer(s, addr))
	}
	return choose(found, stdin, stderr, ask)
}

// found is a discovered server as the user sees it.
type found struct {
	name, addr, detail string
}

func foundServer(s discovery.Server, addr string) found {
	// Beacons are validated, but their text still comes from the network.
	clean := func(s string) string { return string(Neutralize(nil, []byte(s))) }
	detail := strconv.Itoa(s.Online) + " online"
	if s.Version != "" {
		detail += ", version " + clean(s.Version)
	}
	return found{name: clean(s.Name), addr: addr, detail: detail}
}

// choose picks one of the servers, asking on stdin if ask is set.
func choose(servers []found, stdin io.Reader, stderr io.Writer, ask bool) (string, error) {
	switch len(servers) {
	case 0:
		return "", errors.New("no netchat server announced itself on the LAN; give an address: netchat join HOST[:PORT]")
	case 1:
		return servers[0].addr, nil
	}
	fmt.Fprintf(stderr, "%d netchat servers on the LAN:\n", len(servers))
	for i, s := range servers {
		fmt.Fprintf(stderr, "  %d) %s  %s  (%s)\n", i+1, s.name, s.addr, s.detail)
	}
	if !ask {
		return "", fmt.Errorf("%d servers found and standard input is not a terminal to ask which one; give its address: netchat join HOST:PORT", len(servers))
	}
	for {
		fmt.Fprintf(stderr, "Join which one? [1-%d] ", len(servers))
		answer, err := readLine(stdin)
		answer = strings.TrimSpace(answer)
		if n, convErr := strconv.Atoi(answer); convErr == nil && n >= 1 && n <= len(servers) {
			return servers[n-1].addr, nil
		}
		if err != nil {
			fmt.Fprintln(stderr)
			return "", errors.New("no server chosen")
		}
		if answer != "" {
			fmt.Fprintf(stderr, "%q is not a number from 1 to %d.\n", answer, len(servers))
		}
	}
}

// readLine reads one line a byte at a time, so that nothing after it is
// taken from stdin, which the chat session reads next.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	var c [1]byte
	for b.Len() < 1024 {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return b.String(), nil
			}
			b.WriteByte(c[0])
		}
		if err != nil {
			return b.String(), err
		}
	}
	return b.String(), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
