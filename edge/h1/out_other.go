//go:build !linux

package h1

import (
	"net"
	"os"
	"syscall"
)

// Elsewhere than Linux every connection is written through its net.Conn (out.go).
type rawState struct{}

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func (o *outWriter) writeRaw(a, b []byte) (int64, error) { panic("h1: no raw writes here") }

func (o *outWriter) sendFile(f *os.File, n int64) (int64, error) { panic("h1: no raw writes here") }
