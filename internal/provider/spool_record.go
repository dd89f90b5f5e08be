package provider

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The spool's segment files: an 8-byte header (segmentMagic), then records.
// A record is framed as
//
//	length  uint32 LE  bytes of the body
//	crc     uint32 LE  CRC-32C (Castagnoli) of the body
//	body    type (1 byte), seq (uint64 LE), then for a data record:
//	        kind (1 byte), data points (uint32 LE), the batch as OTLP protobuf
//
// An ack record (type recAck) says that the data record with its seq is
// done (exported, or failed for good): it is not sent again after a restart.
const (
	segmentMagic  = "MMSPOOL1"
	frameHeader   = 8
	ackBody       = 1 + 8
	dataBodyFixed = 1 + 8 + 1 + 4
	// maxRecordBody bounds a record the decoder accepts: a larger length is
	// corruption, not a batch (a batch is at most max_bytes anyway).
	maxRecordBody = 1 << 30
)

// Record types.
const (
	recData byte = 1
	recAck  byte = 2
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var (
	// errTornRecord is a record cut short: the tail of a segment written
	// when the process died.
	errTornRecord = errors.New("torn record")
	// errCorruptRecord is a record whose checksum, type or length is wrong.
	errCorruptRecord = errors.New("corrupt record")
)

// spoolRecord is one decoded record.
type spoolRecord struct {
	typ    byte
	seq    uint64
	kind   itemKind
	points int
	// payload is the OTLP protobuf of the batch (data records); it aliases
	// the decoder's input.
	payload []byte
}

// appendDataRecord appends the framed data record of payload to dst.
func appendDataRecord(dst []byte, seq uint64, kind itemKind, points int, payload []byte) []byte {
	bodyLen := dataBodyFixed + len(payload)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(bodyLen))
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = append(dst, recData)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = append(dst, byte(kind))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(points))
	dst = append(dst, payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+frameHeader:], crcTable))
	return dst
}

// appendAckRecord appends the framed ack record of seq to dst.
func appendAckRecord(dst []byte, seq uint64) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, ackBody)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	dst = append(dst, recAck)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+frameHeader:], crcTable))
	return dst
}

// decodeSpoolRecord decodes the record at the start of b and returns it with its
// framed length. A record that b ends inside is errTornRecord; a wrong
// checksum, type or length is errCorruptRecord.
func decodeSpoolRecord(b []byte) (spoolRecord, int, error) {
	if len(b) < frameHeader {
		return spoolRecord{}, 0, errTornRecord
	}
	n := binary.LittleEndian.Uint32(b)
	if n < ackBody || n > maxRecordBody {
		return spoolRecord{}, 0, fmt.Errorf("%w: body length %d", errCorruptRecord, n)
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return spoolRecord{}, 0, errTornRecord
	}
	body := b[frameHeader : frameHeader+int(n)]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return spoolRecord{}, 0, fmt.Errorf("%w: checksum mismatch", errCorruptRecord)
	}
	rec := spoolRecord{typ: body[0], seq: binary.LittleEndian.Uint64(body[1:])}
	switch rec.typ {
	case recAck:
		if n != ackBody {
			return spoolRecord{}, 0, fmt.Errorf("%w: ack record of %d bytes", errCorruptRecord, n)
		}
	case recData:
		if n < dataBodyFixed {
			return spoolRecord{}, 0, fmt.Errorf("%w: data record of %d bytes", errCorruptRecord, n)
		}
		rec.kind = itemKind(body[9])
		if rec.kind != kindNormal && rec.kind != kindFailover {
			return spoolRecord{}, 0, fmt.Errorf("%w: batch kind %d", errCorruptRecord, rec.kind)
		}
		rec.points = int(binary.LittleEndian.Uint32(body[10:]))
		rec.payload = body[dataBodyFixed:]
	default:
		return spoolRecord{}, 0, fmt.Errorf("%w: record type %d", errCorruptRecord, rec.typ)
	}
	return rec, frameHeader + int(n), nil
}
