package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// An object file is a fixed header, the key, the metadata and the body:
//
//	0  magic "ICDISK01"
//	8  key length    uint32
//	12 meta length   uint32
//	16 body length   uint64
//	24 expires       int64, Unix seconds
//	32 body CRC-32C  uint32
//	36 head CRC-32C  uint32, over bytes 0..36, the key and the metadata
//	40 key, metadata, body
//
// Integers are little-endian. A file is whole when its size is exactly
// 40 + key + meta + body and both checksums match.
const (
	headerSize = 40
	magic      = "ICDISK01"
	// Limits on what a header may claim, so that a corrupt length never
	// makes the reader allocate much.
	maxKey  = 64 << 10
	maxMeta = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt marks a file that is not a whole object.
var ErrCorrupt = errors.New("corrupt object file")

// Header is what a file says of the object it holds.
type Header struct {
	Key     string
	Meta    []byte
	BodyLen int64
	Expires int64
	BodyCRC uint32
	// BodyOff is where the body starts in the file.
	BodyOff int64
}

// encodeHeader returns the header block for key and meta with the body's
// length, expiry and checksum filled in.
func encodeHeader(key string, meta []byte, bodyLen, expires int64, bodyCRC uint32) []byte {
	b := make([]byte, headerSize+len(key)+len(meta))
	copy(b, magic)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(key)))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(meta)))
	binary.LittleEndian.PutUint64(b[16:], uint64(bodyLen))
	binary.LittleEndian.PutUint64(b[24:], uint64(expires))
	binary.LittleEndian.PutUint32(b[32:], bodyCRC)
	copy(b[headerSize:], key)
	copy(b[headerSize+len(key):], meta)
	binary.LittleEndian.PutUint32(b[36:], headCRC(b))
	return b
}

func headCRC(b []byte) uint32 {
	c := crc32.Update(0, castagnoli, b[:36])
	return crc32.Update(c, castagnoli, b[headerSize:])
}

// ReadHeader reads and checks the header of an object file of size
// bytes: its magic, its lengths against the file's size, and its
// checksum. The body's checksum is not verified here (see Verify).
func ReadHeader(r io.ReaderAt, size int64) (Header, error) {
	var fixed [headerSize]byte
	if size < headerSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrCorrupt, size)
	}
	if _, err := r.ReadAt(fixed[:], 0); err != nil {
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	if string(fixed[:8]) != magic {
		return Header{}, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	kl := int64(binary.LittleEndian.Uint32(fixed[8:]))
	ml := int64(binary.LittleEndian.Uint32(fixed[12:]))
	bl := binary.LittleEndian.Uint64(fixed[16:])
	if kl > maxKey || ml > maxMeta {
		return Header{}, fmt.Errorf("%w: key of %d or metadata of %d bytes", ErrCorrupt, kl, ml)
	}
	off := headerSize + kl + ml
	if bl > uint64(size) || off+int64(bl) != size {
		return Header{}, fmt.Errorf("%w: %d bytes, the header claims %d", ErrCorrupt, size, off+int64(min(bl, 1<<62)))
	}
	b := make([]byte, off)
	copy(b, fixed[:])
	if _, err := r.ReadAt(b[headerSize:], headerSize); err != nil {
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	if headCRC(b) != binary.LittleEndian.Uint32(fixed[36:]) {
		return Header{}, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	return Header{
		Key:     string(b[headerSize : headerSize+kl]),
		Meta:    b[headerSize+kl:],
		BodyLen: int64(bl),
		Expires: int64(binary.LittleEndian.Uint64(fixed[24:])),
		BodyCRC: binary.LittleEndian.Uint32(fixed[32:]),
		BodyOff: off,
	}, nil
}

// Verify reads the body and checks it against the header's checksum.
func Verify(r io.ReaderAt, h Header) error {
	c := crc32.New(castagnoli)
	n, err := io.Copy(c, io.NewSectionReader(r, h.BodyOff, h.BodyLen))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if n != h.BodyLen || c.Sum32() != h.BodyCRC {
		return fmt.Errorf("%w: body checksum mismatch", ErrCorrupt)
	}
	return nil
}
