//go:build !linux

package edge

import "net"

// setNotsentLowat: only Linux's is used (elsewhere, the kernel's default).
func setNotsentLowat(net.Conn, int) error { return nil }
