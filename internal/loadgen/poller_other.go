//go:build !linux

package loadgen

// poller: without epoll every client gets a reader goroutine.
type poller struct{}

func newPollers(*run) []*poller { return nil }

func (*poller) add(*client) error { panic("loadgen: no pollers on this system") }

func (*poller) close() {}
