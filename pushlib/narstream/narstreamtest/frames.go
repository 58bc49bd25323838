// Package narstreamtest reads the structure of compressed NARs, for tests.
package narstreamtest

import (
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// ZstdFrames walks a zstd stream frame by frame (its header, then its
// blocks up to the last, and the checksum if it has one) and returns the
// frame headers. Skippable frames are returned too.
func ZstdFrames(b []byte) ([]zstd.Header, error) {
	var frames []zstd.Header
	for len(b) > 0 {
		var h zstd.Header
		if err := h.Decode(b); err != nil {
			return frames, fmt.Errorf("frame %d: %w", len(frames), err)
		}
		if h.Skippable {
			if len(b) < 8+int(h.SkippableSize) {
				return frames, fmt.Errorf("frame %d: truncated skippable frame", len(frames))
			}
			b = b[8+int(h.SkippableSize):]
			frames = append(frames, h)
			continue
		}
		b = b[h.HeaderSize:]
		for last := false; !last; {
			if len(b) < 3 {
				return frames, fmt.Errorf("frame %d: truncated block header", len(frames))
			}
			bh := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			last = bh&1 == 1
			size := int(bh >> 3)
			if (bh>>1)&3 == 1 { // RLE: the byte to repeat
				size = 1
			}
			if len(b) < 3+size {
				return frames, fmt.Errorf("frame %d: truncated block", len(frames))
			}
			b = b[3+size:]
		}
		if h.HasCheckSum {
			if len(b) < 4 {
				return frames, fmt.Errorf("frame %d: truncated checksum", len(frames))
			}
			b = b[4:]
		}
		frames = append(frames, h)
	}
	return frames, nil
}
