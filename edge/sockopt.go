package edge

import "net"

// clientListener sets the socket options the edge wants on every client connection it
// accepts (before TLS, HTTP/1.1 and HTTP/2 alike).
type clientListener struct {
	net.Listener
	// notsentLowat is limits.client_notsent_lowat (0: the kernel's default).
	notsentLowat int
}

// ClientListener wraps ln so that every connection it accepts gets the client socket options
// of cfg.Limits, as the Frontend's do: for a server that serves the edge on a listener of its
// own (NewServer; `reel demo`).
func ClientListener(ln net.Listener, cfg Config) net.Listener {
	return clientListener{Listener: ln, notsentLowat: int(cfg.Limits.ClientNotsentLowat)}
}

// Accept accepts a connection and tunes its socket. A socket that refuses an option is
// served as it is: the options tune how writes are scheduled, nothing depends on them.
func (l clientListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil && l.notsentLowat > 0 {
		setNotsentLowat(c, l.notsentLowat)
	}
	return c, err
}
