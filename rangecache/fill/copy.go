package fill

import (
	"io"
	"net/http"
)

// CopyFlushing copies src (a body being filled, typically) to a client's w, flushing after
// every read so that a slow fill's bytes reach clients as they arrive rather than when a
// buffer fills.
func CopyFlushing(w http.ResponseWriter, src io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 128<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			rc.Flush()
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
