package narstream

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// The frames mode compresses one NAR on every core it was given: the NAR is
// cut into frames of frameSize bytes, each compressed on its own (no
// history shared between frames, the window the whole frame), and the
// frames are written in order. A zstd stream is one or more frames (RFC
// 8878, section 3.1): `zstd -d`, libzstd's ZSTD_decompressStream and
// libarchive's zstd filter, which Nix's and Lix's makeDecompressionSink
// use, go on into the next frame, and pzstd writes such streams. The e2e
// tests substitute a NAR written this way with Nix 2.8, 2.26 and 2.34
// (TestLargeNARInFramesSubstitutes).
//
// klauspost's parallel sections (WithConcurrentBlocks) make one frame, but
// cut it into sections four windows long with a few in flight per core; at
// the memory that allows (a 512 KiB window) a 1 GiB text NAR came out 2 %
// larger than it does in 4 MiB frames and took more CPU. The frames' input
// and output buffers are mapped outside the Go heap (framebuf_unix.go), so
// the collector's headroom is not taken on them. Measured on 2 cores: README,
// "How cost grows".
const (
	frameSize = 4 << 20
	// frameSpare is how many frames beyond one per core are in memory: one
	// fills while the cores compress, one waits to be written.
	frameSpare = 2
)

// frameJob is one frame: its input, its compressed output (in outBuf, or
// on the heap if it ever outgrew it), the error if compressing it failed,
// and done, which receives once compressing it has ended.
type frameJob struct {
	in, out []byte
	outBuf  []byte
	err     error
	done    chan struct{}
}

// spareJobs keeps frames (their buffers) for the next NAR in the mode: up
// to maxSpareJobs, beyond which a frame's buffers are unmapped.
var spareJobs struct {
	sync.Mutex
	jobs []*frameJob
}

const maxSpareJobs = 8

// getJob is a spare frame, or a new one.
func getJob() *frameJob {
	spareJobs.Lock()
	defer spareJobs.Unlock()
	if k := len(spareJobs.jobs); k > 0 {
		j := spareJobs.jobs[k-1]
		spareJobs.jobs = spareJobs.jobs[:k-1]
		return j
	}
	return &frameJob{in: newFrameBuf(frameSize)[:0], outBuf: newFrameBuf(maxFrameOut(frameSize))[:0], done: make(chan struct{}, 1)}
}

// putJob keeps a frame whose compression has ended for the next NAR.
func putJob(j *frameJob) {
	j.in, j.out, j.err = j.in[:0], nil, nil
	spareJobs.Lock()
	defer spareJobs.Unlock()
	if len(spareJobs.jobs) < maxSpareJobs {
		spareJobs.jobs = append(spareJobs.jobs, j)
		return
	}
	freeFrameBuf(j.in)
	freeFrameBuf(j.outBuf)
}

// maxFrameOut bounds what a frame of size bytes compresses to: its header,
// a 3-byte header per 128 KiB block and every byte stored raw.
func maxFrameOut(size int) int {
	return 18 + 3*(size/(128<<10)+1) + size
}

// frameEncoders holds one encoder per level for EncodeAll, which may be
// called from up to GOMAXPROCS goroutines at once; each call compresses one
// frame on one goroutine, and each NAR has at most as many calls under way
// as it holds cores.
var frameEncoders sync.Map // zstd.EncoderLevel -> *zstd.Encoder

func frameEncoder(level zstd.EncoderLevel) (*zstd.Encoder, error) {
	if e, ok := frameEncoders.Load(level); ok {
		return e.(*zstd.Encoder), nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithWindowSize(frameSize),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)), zstd.WithEncoderCRC(false),
		zstd.WithAllLitEntropyCompression(true),
		// The window is the frame: the history buffer holds one frame
		// (and a block), not two windows, and never moves.
		zstd.WithLowerEncoderMem(true),
		// An empty stream is one empty frame, not nothing.
		zstd.WithZeroFrames(true))
	if err != nil {
		return nil, err
	}
	e, _ := frameEncoders.LoadOrStore(level, enc)
	return e.(*zstd.Encoder), nil
}

// framesZstd is the frames mode's writer. It holds the NAR's first
// probeSize bytes: a NAR that starts incompressible goes to klauspost's
// parallel sections with incompressibleWindow instead (its frames would be
// as large as their input and no window finds anything in them). Any
// other is cut into frames: Write fills the current one, a full frame is
// compressed on a goroutine of its own while the next fills, and finished
// frames are written to w in order, on the writer's goroutine, as soon as
// they are done and Write or Close comes by. At most cores + frameSpare
// frames exist at once.
type framesZstd struct {
	w        io.Writer
	level    zstd.EncoderLevel
	cores    int
	probe    *[]byte     // the NAR's start, until the mode is chosen
	sections *pooledZstd // the encoder of a NAR that starts incompressible
	enc      *zstd.Encoder
	slots    chan struct{} // one per core: compressions under way
	cur      *frameJob
	pending  []*frameJob // compressing or done, oldest first
	free     []*frameJob // written, to be filled again
	frames   int         // frames dispatched
	err      error       // the first error: nothing more is written
}

func newFramesZstd(w io.Writer, level zstd.EncoderLevel, cores int) *framesZstd {
	return &framesZstd{w: w, level: level, cores: cores}
}

func (f *framesZstd) started() bool { return f.enc != nil || f.sections != nil }

func (f *framesZstd) Write(b []byte) (int, error) {
	n := len(b)
	if !f.started() {
		if f.probe == nil {
			f.probe = probeBufs.Get().(*[]byte)
		}
		room := probeSize - len(*f.probe)
		if len(b) < room {
			*f.probe = append(*f.probe, b...)
			return n, nil
		}
		*f.probe = append(*f.probe, b[:room]...)
		b = b[room:]
		if err := f.start(); err != nil {
			return 0, err
		}
	}
	if f.sections != nil {
		if _, err := f.sections.Write(b); err != nil {
			return 0, err
		}
		return n, nil
	}
	if err := f.fill(b); err != nil {
		return 0, err
	}
	return n, nil
}

// start chooses the mode from the probe and hands the probe on.
func (f *framesZstd) start() error {
	var probe []byte
	if f.probe != nil {
		probe = *f.probe
		defer func() { *f.probe = (*f.probe)[:0]; probeBufs.Put(f.probe); f.probe = nil }()
	}
	if incompressible(probe) {
		enc, err := zstdEncoder(f.w, poolKey{f.level, f.cores, true, incompressibleWindow})
		if err != nil {
			return err
		}
		f.sections = enc
		_, err = enc.Write(probe)
		return err
	}
	enc, err := frameEncoder(f.level)
	if err != nil {
		return err
	}
	f.enc, f.slots = enc, make(chan struct{}, f.cores)
	return f.fill(probe)
}

// fill copies b into frames, dispatching each one that is full.
func (f *framesZstd) fill(b []byte) error {
	for len(b) > 0 {
		if f.cur == nil {
			if err := f.take(); err != nil {
				return err
			}
		}
		room := min(frameSize-len(f.cur.in), len(b))
		f.cur.in = append(f.cur.in, b[:room]...)
		b = b[room:]
		if len(f.cur.in) == frameSize {
			f.dispatch()
		}
	}
	return f.err
}

// take makes f.cur an empty frame, writing out the frames that are done
// first and waiting for the oldest when all cores + frameSpare frames are
// taken.
func (f *framesZstd) take() error {
	for len(f.pending) > 0 {
		select {
		case <-f.pending[0].done:
			f.writeOldest()
			continue
		default:
		}
		if len(f.pending) < f.cores+frameSpare {
			break
		}
		<-f.pending[0].done
		f.writeOldest()
	}
	if f.err != nil {
		return f.err
	}
	if k := len(f.free); k > 0 {
		f.cur, f.free = f.free[k-1], f.free[:k-1]
	} else {
		f.cur = getJob()
	}
	return nil
}

// dispatch compresses f.cur on a goroutine of its own, once one of the
// NAR's cores is free.
func (f *framesZstd) dispatch() {
	j := f.cur
	f.cur = nil
	f.pending = append(f.pending, j)
	f.frames++
	go func() {
		f.slots <- struct{}{}
		defer func() {
			if r := recover(); r != nil {
				j.err = fmt.Errorf("compressing a frame: %v", r)
			}
			<-f.slots
			j.done <- struct{}{}
		}()
		j.out = f.enc.EncodeAll(j.in, j.outBuf[:0])
	}()
}

// writeOldest writes the oldest frame, whose compression has ended. After
// an error nothing more is written, but every frame is still waited for
// before its buffers are used again.
func (f *framesZstd) writeOldest() {
	j := f.pending[0]
	f.pending[0] = nil
	f.pending = f.pending[1:]
	if f.err == nil {
		f.err = j.err
	}
	if f.err == nil {
		_, f.err = f.w.Write(j.out)
	}
	j.in, j.out, j.err = j.in[:0], nil, nil
	f.free = append(f.free, j)
}

// Close compresses what is left, writes every frame and returns the first
// error. It never closes w.
func (f *framesZstd) Close() error {
	if !f.started() {
		if err := f.start(); err != nil {
			return err
		}
	}
	if f.sections != nil {
		return f.sections.Close()
	}
	if f.cur != nil && len(f.cur.in) == 0 && f.frames > 0 {
		f.free = append(f.free, f.cur)
		f.cur = nil
	}
	if f.cur == nil && f.frames == 0 && f.err == nil {
		// An empty stream is still one (empty) frame.
		if err := f.take(); err != nil {
			return err
		}
	}
	if f.cur != nil {
		f.dispatch()
	}
	for len(f.pending) > 0 {
		<-f.pending[0].done
		f.writeOldest()
	}
	for _, j := range f.free {
		putJob(j)
	}
	f.pending, f.free = nil, nil
	return f.err
}
