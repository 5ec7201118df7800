//go:build !linux

package server

import "errors"

// poller is only implemented on Linux; elsewhere every connection has a
// reader goroutine.
type poller struct{}

func newPoller() (*poller, error) { return nil, errors.New("no poller on this system") }
func (p *poller) add(*conn) error { return errors.New("no poller on this system") }
func (p *poller) remove(*conn)    {}
func (p *poller) run()            {}
func (p *poller) close()          {}
