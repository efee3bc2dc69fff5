package h1

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxSendfile is the most asked of one sendfile(2), as in Go's net package.
const maxSendfile = 4 << 20

// rawState is the state of one raw write or sendfile: fields rather than a closure's
// captures, so that a write allocates nothing.
type rawState struct {
	iov      [2][]byte
	bufs     [][]byte // what is left to write
	srcFD    int      // sendfile: the file
	off      int64    // sendfile: where in it
	remain   int64    // sendfile: bytes left
	n        int64    // bytes written by this call
	err      error
	armed    bool // this call set a deadline
	progress bool // bytes went out since the deadline was set
	writeFn  func(uintptr) bool
	sendFn   func(uintptr) bool
}

func rawConnOf(c net.Conn) syscall.RawConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return raw
}

// writeRaw writes a then b with writev(2), waiting for the socket as net.Conn's Write does.
func (o *outWriter) writeRaw(a, b []byte) (int64, error) {
	if o.writeFn == nil {
		o.writeFn, o.sendFn = o.writeStep, o.sendStep
	}
	o.iov = [2][]byte{a, b}
	o.bufs = o.iov[:]
	if len(b) == 0 {
		o.bufs = o.iov[:1]
	}
	if len(a) == 0 {
		o.bufs = o.bufs[1:]
	}
	return o.rawRun(o.writeFn)
}

// sendFile sends n bytes of f from its current offset with sendfile(2), and moves the offset
// past them.
func (o *outWriter) sendFile(f *os.File, n int64) (int64, error) {
	if o.writeFn == nil {
		o.writeFn, o.sendFn = o.writeStep, o.sendStep
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, err
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var sent int64
	var werr error
	if err := sc.Control(func(fd uintptr) {
		o.srcFD, o.off, o.remain = int(fd), off, n
		sent, werr = o.rawRun(o.sendFn)
	}); err != nil {
		return 0, err
	}
	if _, err := f.Seek(off+sent, io.SeekStart); err != nil && werr == nil {
		werr = err
	}
	return sent, werr
}

// rawRun runs step on the socket until it is done, then takes back any deadline it set.
func (o *outWriter) rawRun(step func(uintptr) bool) (int64, error) {
	o.n, o.err, o.armed, o.progress = 0, nil, false, false
	err := o.raw.Write(step)
	if o.armed {
		o.conn.SetWriteDeadline(o.fixed)
	}
	n := o.n
	o.iov, o.bufs = [2][]byte{}, nil
	if o.err != nil {
		return n, o.err
	}
	return n, err
}

func (o *outWriter) writeStep(fd uintptr) bool {
	for len(o.bufs) > 0 {
		var n int
		var err error
		bulk := o.turn(int64(len(o.bufs[len(o.bufs)-1])))
		if len(o.bufs) == 1 {
			n, err = syscall.Write(int(fd), o.bufs[0])
		} else {
			if raceBuild {
				syscall.Write(int(fd), nil) // see raceBuild
			}
			n, err = unix.Writev(int(fd), o.bufs)
		}
		if bulk {
			<-o.turns
		}
		if n > 0 {
			o.n += int64(n)
			o.progress = true
			for n > 0 {
				k := min(n, len(o.bufs[0]))
				o.bufs[0] = o.bufs[0][k:]
				n -= k
				if len(o.bufs[0]) == 0 {
					o.bufs = o.bufs[1:]
				}
			}
		}
		if done, wait := o.outcome("writev", n, err); done {
			return !wait
		}
	}
	return true
}

func (o *outWriter) sendStep(fd uintptr) bool {
	for o.remain > 0 {
		bulk := o.turn(o.remain)
		n, err := syscall.Sendfile(int(fd), o.srcFD, &o.off, int(min(o.remain, maxSendfile)))
		if bulk {
			<-o.turns
		}
		if n > 0 {
			o.n += int64(n)
			o.remain -= int64(n)
			o.progress = true
		}
		if n == 0 && err == nil {
			return true // the file ended before the length: the response ends short
		}
		if done, wait := o.outcome("sendfile", n, err); done {
			return !wait
		}
	}
	return true
}

// bulkWrite is the body size from which a write takes a turn (see Server.turns).
const bulkWrite = 64 << 10

// turn takes one of the server's turns for a system call sending a body of which left bytes
// remain, if that is bulkWrite or more, and reports whether it took one (to give back after
// the call). A turn is never held while waiting: one not free at once is waited for off the
// event loop.
func (o *outWriter) turn(left int64) bool {
	if o.turns == nil || left < bulkWrite {
		return false
	}
	select {
	case o.turns <- struct{}{}:
	default:
		if o.waiting != nil {
			o.waiting()
		}
		o.turns <- struct{}{}
	}
	return true
}

// outcome sorts a system call's error: go on (EINTR, none), wait for the socket (EAGAIN; the
// deadline re-armed if bytes went out since it was set), or stop with o.err.
func (o *outWriter) outcome(call string, n int, err error) (done, wait bool) {
	switch err {
	case nil, syscall.EINTR:
		return false, false
	case syscall.EAGAIN:
		if o.waiting != nil {
			o.waiting()
		}
		if o.timeout > 0 && (!o.armed || o.progress) {
			o.conn.SetWriteDeadline(o.deadline(time.Now().Add(o.timeout)))
			o.armed, o.progress = true, false
		}
		return true, true
	}
	o.err = os.NewSyscallError(call, err)
	return true, false
}
