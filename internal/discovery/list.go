package discovery

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"
)

// WriteTable prints servers as aligned columns for `netchat discover`.
func WriteTable(w io.Writer, servers []Server) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tTLS\tONLINE\tVERSION\tID")
	for _, s := range servers {
		tls := "-"
		if s.TLSPort != 0 {
			tls = strconv.Itoa(s.TLSPort)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Addr, tls, s.Online, s.Version, s.ID)
	}
	return tw.Flush()
}

// jsonServer is the --json form: the beacon fields plus where to connect.
type jsonServer struct {
	Beacon
	Addr string    `json:"addr"`
	Seen time.Time `json:"seen"`
}

// WriteJSON prints servers as one JSON array.
func WriteJSON(w io.Writer, servers []Server) error {
	out := make([]jsonServer, 0, len(servers))
	for _, s := range servers {
		out = append(out, jsonServer{Beacon: s.Beacon, Addr: s.Addr, Seen: s.Seen.UTC()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
