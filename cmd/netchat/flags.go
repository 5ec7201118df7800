package main

import (
	"fmt"
	"strconv"
	"strings"
)

// rateValue is a rate flag: "10", "10/s", "600/m" or "3600/h", in events
// per second.
type rateValue float64

func (r *rateValue) String() string {
	return strconv.FormatFloat(float64(*r), 'g', -1, 64) + "/s"
}

func (r *rateValue) Set(s string) error {
	num, unit, hasUnit := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return fmt.Errorf("want a rate like 10/s or 600/m, got %q", s)
	}
	if hasUnit {
		switch unit {
		case "s", "sec":
		case "m", "min":
			v /= 60
		case "h":
			v /= 3600
		default:
			return fmt.Errorf("unknown rate unit %q (use /s, /m or /h)", unit)
		}
	}
	*r = rateValue(v)
	return nil
}

func (r *rateValue) Type() string { return "rate" }

// byteSize is a size flag: plain bytes or with a unit (KiB, MiB, GiB, KB,
// MB, GB, k, m, g; the single letters are binary).
type byteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
}

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.m && v%u.m == 0 {
			return strconv.FormatInt(v/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return fmt.Errorf("want a positive size like 1MiB or 65536, got %q", s)
	}
	*b = byteSize(v * mult)
	return nil
}

func (b *byteSize) Type() string { return "size" }
