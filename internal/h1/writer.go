package h1

import "net"

// writer buffers the header block and small bodies, and sends a large body
// in one writev together with whatever is buffered before it (the header),
// where a bufio.Writer would make two writes and copy a buffer's worth.
type writer struct {
	conn net.Conn
	buf  []byte
	iov  [2][]byte
	bufs net.Buffers // a field, so writev's argument does not escape per call
	err  error
}

// directWrite: bodies this large skip the buffer.
const directWrite = 2 << 10

func (w *writer) reset(c net.Conn, buf []byte) {
	*w = writer{conn: c, buf: buf[:0]}
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(w.buf)+len(p) <= cap(w.buf) {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if len(p) < directWrite {
		if err := w.Flush(); err != nil {
			return 0, err
		}
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	w.bufs = append(w.iov[:0], w.buf, p)
	_, err := w.bufs.WriteTo(w.conn)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

func (w *writer) WriteString(s string) (int, error) {
	if len(w.buf)+len(s) <= cap(w.buf) && w.err == nil {
		w.buf = append(w.buf, s...)
		return len(s), nil
	}
	return w.Write(unsafeBytes(s))
}

func (w *writer) WriteByte(b byte) error {
	if len(w.buf) == cap(w.buf) {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, b)
	return nil
}

func (w *writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.conn.Write(w.buf)
	w.buf = w.buf[:0]
	if err != nil {
		w.err = err
	}
	return err
}
