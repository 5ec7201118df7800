// Package discovery lets chat servers announce themselves on the LAN and
// clients find them (SPEC §5): a server multicasts a small JSON beacon to
// 239.255.80.88:8089 with TTL 1; a browser listens for a while and lists
// the servers it heard.
package discovery

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// DefaultGroup is the discovery group: administratively scoped (never
// routed beyond the organisation) and, with TTL 1, never beyond the link.
const DefaultGroup = "239.255.80.88:8089"

// Service is the value of Beacon.Service; beacons of other services that
// happen to use the group are ignored.
const Service = "netchat"

// MaxBeaconSize bounds a beacon datagram. Real beacons are ~150 bytes; the
// bound keeps a hostile sender from making browsers parse large inputs.
const MaxBeaconSize = 1024

// Field limits; a beacon outside them is rejected as a whole.
const (
	maxIDLen      = 64
	maxNameLen    = 64
	maxVersionLen = 32
)

// Beacon is what an announcing server multicasts.
type Beacon struct {
	Service string `json:"service"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Port    int    `json:"port"`
	TLSPort int    `json:"tls_port,omitempty"`
	Online  int    `json:"online"`
	Version string `json:"version"`
}

// Marshal encodes b after validating it.
func (b Beacon) Marshal() ([]byte, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	p, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	if len(p) > MaxBeaconSize {
		return nil, fmt.Errorf("beacon is %d bytes, more than %d", len(p), MaxBeaconSize)
	}
	return p, nil
}

// Validate checks that a beacon is one of ours and safe to display.
func (b Beacon) Validate() error {
	switch {
	case b.Service != Service:
		return fmt.Errorf("service %q is not %q", b.Service, Service)
	case b.ID == "" || len(b.ID) > maxIDLen:
		return errors.New("id must be 1-64 bytes")
	case len(b.Name) > maxNameLen:
		return errors.New("name longer than 64 bytes")
	case len(b.Version) > maxVersionLen:
		return errors.New("version longer than 32 bytes")
	case b.Port < 1 || b.Port > 65535:
		return fmt.Errorf("port %d out of range", b.Port)
	case b.TLSPort < 0 || b.TLSPort > 65535:
		return fmt.Errorf("tls_port %d out of range", b.TLSPort)
	case b.Online < 0:
		return errors.New("online count is negative")
	}
	for _, s := range []string{b.ID, b.Name, b.Version} {
		if !displayable(s) {
			return errors.New("text fields must be printable UTF-8")
		}
	}
	return nil
}

// displayable rejects what could mess up a terminal when listed: invalid
// UTF-8, control characters (escape sequences start with one) and
// bidirectional overrides.
func displayable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return false
		}
	}
	return true
}

// ParseBeacon decodes and validates a datagram. Unknown JSON fields are
// allowed so that newer servers can add some; anything else that is off
// (size, syntax, trailing data, types, limits) is an error.
func ParseBeacon(p []byte) (Beacon, error) {
	var b Beacon
	if len(p) > MaxBeaconSize {
		return b, fmt.Errorf("beacon of %d bytes is larger than %d", len(p), MaxBeaconSize)
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	if err := dec.Decode(&b); err != nil {
		return Beacon{}, fmt.Errorf("beacon: %w", err)
	}
	if dec.More() {
		return Beacon{}, errors.New("beacon: trailing data")
	}
	if err := b.Validate(); err != nil {
		return Beacon{}, fmt.Errorf("beacon: %w", err)
	}
	return b, nil
}
