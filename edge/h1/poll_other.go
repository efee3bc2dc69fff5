//go:build !linux

package h1

import (
	"errors"
	"syscall"
)

// Elsewhere than Linux every connection has a goroutine of its own (see poll_linux.go).
type loop struct{}

type poller struct{}

var errLoopClosed = errors.New("event loop closed")

func newPoller(*Server) (*poller, error) { return nil, errors.New("event loops need epoll (Linux)") }

func (p *poller) pick() *loop { return nil }
func (p *poller) stop()       {}

func socketOf(syscall.RawConn) (int32, bool) { return 0, false }

func (l *loop) add(*conn)        {}
func (l *loop) park(*conn) error { return errLoopClosed }
func (l *loop) claim(*conn) bool { return false }
func (l *loop) remove(*conn)     {}
func (l *loop) leave(uint64)     {}
