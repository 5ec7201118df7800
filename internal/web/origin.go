package web

import (
	"fmt"
	"path"
	"strings"
)

// ParseOrigins checks --http-allow-origin patterns and returns them in the
// form websocket.AcceptOptions.OriginPatterns takes. A pattern is either a
// full origin, scheme://host[:port] (http or https), matched against the
// Origin header's scheme and host, or a host[:port] alone, matched against
// its host with any scheme. Both may use path.Match wildcards
// (*.example.org). Items may themselves be comma-separated lists; empty
// ones are ignored. A trailing slash, as browsers show origins in the
// address bar, is dropped.
func ParseOrigins(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			p, err := parseOrigin(s)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func parseOrigin(s string) (string, error) {
	p := strings.ToLower(s)
	host := p
	if scheme, rest, ok := strings.Cut(p, "://"); ok {
		if scheme != "http" && scheme != "https" {
			return "", fmt.Errorf("allowed origin %q: the scheme must be http or https", s)
		}
		host = strings.TrimSuffix(rest, "/")
		p = scheme + "://" + host
	} else {
		host = strings.TrimSuffix(host, "/")
		p = host
	}
	if host == "" {
		return "", fmt.Errorf("allowed origin %q has no host", s)
	}
	if strings.ContainsAny(host, "/?#@ ") {
		return "", fmt.Errorf("allowed origin %q: an origin is scheme://host[:port], without path, query or user", s)
	}
	if _, err := path.Match(host, ""); err != nil {
		return "", fmt.Errorf("allowed origin %q is not a valid pattern: %v", s, err)
	}
	return p, nil
}
