package packager

import (
	"errors"
	"fmt"
	"io"

	"github.com/Eyevinn/mp4ff/mp4"
)

// sample is one access unit's metadata. Its bytes stay in the input file at off.
type sample struct {
	dts  uint64 // decode time in the track's timescale
	dur  uint32
	cto  int32 // composition offset (the track's edit list, kept in our init, maps it)
	size uint32
	off  int64
	sync bool
}

// sampleIter yields a track's samples in decode order; io.EOF ends the track.
// mp4ff has no ready iterator (see DESIGN.md), so we walk the tables ourselves: it keeps memory
// at one cursor per track instead of a slice of every sample.
type sampleIter interface {
	next() (sample, error)
}

// progressiveIter walks a progressive file's sample tables (stts, ctts, stss, stsz, stsc,
// stco/co64) with one cursor each, ISO/IEC 14496-12 §8.6-§8.7.
type progressiveIter struct {
	stbl        *mp4.StblBox
	n, i        uint32 // number of samples, next sample (0-based)
	dts         uint64
	stts        int    // current stts entry
	sttsLeft    uint32 // samples left in it
	sttsStarted bool
	ctts        int
	stss        int
	// chunk cursor
	chunk     uint32 // current chunk, 1-based
	stsc      int    // stsc entry in force for chunk
	inChunk   uint32 // samples left in the current chunk
	chunkPos  int64  // offset of the next sample in the current chunk
	numChunks uint32
}

func newProgressiveIter(stbl *mp4.StblBox) (*progressiveIter, error) {
	switch {
	case stbl == nil || stbl.Stts == nil || stbl.Stsz == nil || stbl.Stsc == nil:
		return nil, errors.New("sample table is missing stts, stsz or stsc")
	case stbl.Stco == nil && stbl.Co64 == nil:
		return nil, errors.New("sample table has no chunk offsets (stco/co64)")
	case len(stbl.Stts.SampleCount) != len(stbl.Stts.SampleTimeDelta):
		return nil, errors.New("corrupt stts")
	}
	it := &progressiveIter{stbl: stbl, n: stbl.Stsz.SampleNumber}
	var sttsTotal uint64
	for _, c := range stbl.Stts.SampleCount {
		sttsTotal += uint64(c)
	}
	if sttsTotal != uint64(it.n) {
		return nil, fmt.Errorf("corrupt sample table: stts counts %d samples, stsz %d", sttsTotal, it.n)
	}
	if stbl.Stsz.SampleUniformSize == 0 && uint32(len(stbl.Stsz.SampleSize)) != it.n {
		return nil, fmt.Errorf("corrupt stsz: %d sizes for %d samples", len(stbl.Stsz.SampleSize), it.n)
	}
	if c := stbl.Ctts; c != nil && (len(c.EndSampleNr) != len(c.SampleOffset)+1 || len(c.SampleOffset) == 0) {
		return nil, errors.New("corrupt ctts")
	}
	if stbl.Co64 != nil {
		it.numChunks = uint32(len(stbl.Co64.ChunkOffset))
	} else {
		it.numChunks = uint32(len(stbl.Stco.ChunkOffset))
	}
	if it.n > 0 && (len(stbl.Stsc.Entries) == 0 || stbl.Stsc.Entries[0].FirstChunk != 1) {
		return nil, errors.New("corrupt stsc: first entry must start at chunk 1")
	}
	return it, nil
}

func (it *progressiveIter) chunkOffset(c uint32) int64 {
	if it.stbl.Co64 != nil {
		return int64(it.stbl.Co64.ChunkOffset[c-1])
	}
	return int64(it.stbl.Stco.ChunkOffset[c-1])
}

func (it *progressiveIter) next() (sample, error) {
	if it.i >= it.n {
		return sample{}, io.EOF
	}
	nr := it.i + 1 // tables are 1-based
	st := it.stbl

	for it.sttsLeft == 0 { // zero-count entries are legal and carry nothing
		if it.sttsStarted {
			it.stts++
		}
		it.sttsStarted = true
		if it.stts >= len(st.Stts.SampleCount) {
			return sample{}, fmt.Errorf("corrupt stts: no duration for sample %d", nr)
		}
		it.sttsLeft = st.Stts.SampleCount[it.stts]
	}
	s := sample{dts: it.dts, dur: st.Stts.SampleTimeDelta[it.stts]}
	it.sttsLeft--

	if c := st.Ctts; c != nil {
		for it.ctts+1 < len(c.EndSampleNr) && c.EndSampleNr[it.ctts+1] < nr {
			it.ctts++
		}
		s.cto = c.SampleOffset[min(it.ctts, len(c.SampleOffset)-1)]
	}

	if st.Stss == nil {
		s.sync = true
	} else {
		for it.stss < len(st.Stss.SampleNumber) && st.Stss.SampleNumber[it.stss] < nr {
			it.stss++
		}
		s.sync = it.stss < len(st.Stss.SampleNumber) && st.Stss.SampleNumber[it.stss] == nr
	}

	if st.Stsz.SampleUniformSize != 0 {
		s.size = st.Stsz.SampleUniformSize
	} else {
		s.size = st.Stsz.SampleSize[it.i]
	}

	if it.inChunk == 0 {
		if err := it.nextChunk(nr); err != nil {
			return sample{}, err
		}
	}
	s.off = it.chunkPos
	it.chunkPos += int64(s.size)
	it.inChunk--

	it.dts += uint64(s.dur)
	it.i++
	return s, nil
}

// nextChunk moves the chunk cursor to the next non-empty chunk.
func (it *progressiveIter) nextChunk(nr uint32) error {
	entries := it.stbl.Stsc.Entries
	for {
		it.chunk++
		if it.chunk > it.numChunks {
			return fmt.Errorf("corrupt sample table: sample %d lies past the last chunk", nr)
		}
		for it.stsc+1 < len(entries) && entries[it.stsc+1].FirstChunk <= it.chunk {
			it.stsc++
		}
		it.inChunk = entries[it.stsc].SamplesPerChunk
		it.chunkPos = it.chunkOffset(it.chunk)
		if it.inChunk > 0 {
			return nil
		}
	}
}

// fragmentedIter reads a fragmented file moof by moof, keeping only the current fragment's
// samples for one track.
type fragmentedIter struct {
	in      *inputFile
	trackID uint32
	trex    *mp4.TrexBox
	pos     int64
	buf     []sample
	bi      int
	nextDTS uint64
}

func newFragmentedIter(in *inputFile, trackID uint32) *fragmentedIter {
	var trex *mp4.TrexBox
	if in.moov.Mvex != nil {
		for _, t := range in.moov.Mvex.Trexs {
			if t.TrackID == trackID {
				trex = t
			}
		}
	}
	return &fragmentedIter{in: in, trackID: trackID, trex: trex, pos: in.firstMoof}
}

func (it *fragmentedIter) next() (sample, error) {
	for it.bi >= len(it.buf) {
		if err := it.readFragment(); err != nil {
			return sample{}, err
		}
	}
	s := it.buf[it.bi]
	it.bi++
	return s, nil
}

// readFragment advances to the next moof holding this track and fills buf.
func (it *fragmentedIter) readFragment() error {
	it.buf, it.bi = it.buf[:0], 0
	for len(it.buf) == 0 {
		b, err := readTopBox(it.in.f, it.pos, it.in.size)
		if err != nil {
			return err // io.EOF at the end of the file
		}
		it.pos += b.size
		if b.typ != "moof" {
			continue
		}
		box, err := decodeBox(it.in.f, b)
		if err != nil {
			return err
		}
		moof, ok := box.(*mp4.MoofBox)
		if !ok {
			return fmt.Errorf("corrupt moof at offset %d", b.pos)
		}
		if err := it.collect(moof, b); err != nil {
			return err
		}
	}
	return nil
}

func (it *fragmentedIter) collect(moof *mp4.MoofBox, b topBox) error {
	for _, traf := range moof.Trafs {
		if traf.Tfhd == nil || traf.Tfhd.TrackID != it.trackID {
			continue
		}
		base := b.pos // default-base-is-moof, and what CMAF writers use
		if traf.Tfhd.HasBaseDataOffset() {
			base = int64(traf.Tfhd.BaseDataOffset)
		}
		dts := it.nextDTS
		if traf.Tfdt != nil {
			dts = traf.Tfdt.BaseMediaDecodeTime()
		}
		off := base
		for _, trun := range traf.Truns {
			trun.AddSampleDefaultValues(traf.Tfhd, it.trex)
			if f, ok := trun.FirstSampleFlags(); ok && !trun.HasSampleFlags() && len(trun.Samples) > 0 {
				trun.Samples[0].Flags = f
			}
			if trun.HasDataOffset() {
				off = base + int64(trun.DataOffset)
			}
			for _, ts := range trun.Samples {
				s := sample{
					dts:  dts,
					dur:  ts.Dur,
					cto:  ts.CompositionTimeOffset,
					size: ts.Size,
					off:  off,
					sync: !mp4.DecodeSampleFlags(ts.Flags).SampleIsNonSync,
				}
				if s.off < 0 || s.off+int64(s.size) > it.in.size {
					return fmt.Errorf("truncated: sample data at offset %d+%d lies past the end of the file (%d bytes)", s.off, s.size, it.in.size)
				}
				it.buf = append(it.buf, s)
				dts += uint64(ts.Dur)
				off += int64(ts.Size)
			}
		}
		it.nextDTS = dts
	}
	return nil
}
