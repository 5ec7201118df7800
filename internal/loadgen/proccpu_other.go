//go:build !linux

package loadgen

import "time"

func processCPUTime(int) (time.Duration, bool) { return 0, false }
