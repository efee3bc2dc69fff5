package edge

import (
	"net"

	"golang.org/x/sys/unix"
)

// setNotsentLowat sets TCP_NOTSENT_LOWAT on c's socket: the kernel reports it writable only
// while fewer than n bytes wait unsent, so a large response goes out in turns of about n
// bytes as the client takes them, instead of as much as the send buffer (autotuned up to
// tcp_wmem's maximum, 4 MiB) will hold at once.
func setNotsentLowat(c net.Conn, n int) error {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, n)
	}); err != nil {
		return err
	}
	return serr
}
