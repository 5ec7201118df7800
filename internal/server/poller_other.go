//go:build !linux

package server

import (
	"errors"
	"log/slog"
)

// poller is only implemented on Linux; elsewhere every connection has a
// reader goroutine.
type poller struct{}

var errNoPoller = errors.New("no poller on this system")

func newPoller(*slog.Logger) (*poller, error) { return nil, errNoPoller }
func (p *poller) add(*tcpConn) error          { return errNoPoller }
func (p *poller) arm(*tcpConn) error          { return errNoPoller }
func (p *poller) disarm(*tcpConn)             {}
func (p *poller) remove(*tcpConn, bool)       {}
func (p *poller) run()                        {}
func (p *poller) close()                      {}
