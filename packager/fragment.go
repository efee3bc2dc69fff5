package packager

import (
	"bytes"
	"fmt"

	"github.com/Eyevinn/mp4ff/mp4"
)

// fragmentHeader encodes the moof and the mdat header of one single-track CMAF fragment (track
// 1, as in our init segments) holding samples from decode time base; the samples' bytes follow
// it. The VOD writer, the live loop and the ingest reader all write their fragments with it.
//
// The trun carries only what varies from sample to sample (ISO/IEC 14496-12 §8.8.7-8.8.8): a
// duration, size or flags shared by every sample goes once into tfhd as a default, the flags of
// a video fragment's leading sync sample into first-sample-flags, and composition offsets only
// when one is non-zero. Audio then costs 4 bytes a sample instead of 16, and a fragment of
// same-sized samples none at all — which matters most for LL parts, where every part is one.
func fragmentHeader(seq uint32, base uint64, samples []sample) ([]byte, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("encoding fragment %d: no samples", seq)
	}
	frag, err := mp4.CreateFragment(seq, 1)
	if err != nil {
		return nil, fmt.Errorf("encoding fragment %d: %w", seq, err)
	}
	for _, s := range samples {
		frag.AddSample(mp4.NewSample(sampleFlags(s), s.dur, s.size, s.cto), base)
	}
	compactRun(frag.Moof.Traf.Tfhd, frag.Moof.Traf.Trun, samples)
	var hdr bytes.Buffer
	if err := frag.Encode(&hdr); err != nil { // moof + mdat header: the mdat's size is known
		return nil, fmt.Errorf("encoding fragment %d: %w", seq, err)
	}
	return hdr.Bytes(), nil
}

func sampleFlags(s sample) uint32 {
	if s.sync {
		return mp4.SyncSampleFlags
	}
	return mp4.NonSyncSampleFlags
}

// compactRun moves what all samples share into tfhd defaults and leaves in trun only the
// per-sample fields that differ.
func compactRun(tfhd *mp4.TfhdBox, trun *mp4.TrunBox, samples []sample) {
	first := samples[0]
	sameDur, sameSize, zeroCTO, negative := true, true, true, false
	for _, s := range samples {
		sameDur = sameDur && s.dur == first.dur
		sameSize = sameSize && s.size == first.size
		zeroCTO = zeroCTO && s.cto == 0
		negative = negative || s.cto < 0
	}
	// Flags of every sample after the first, which may differ (a sync sample leading a GOP).
	restFlags, sameRest := sampleFlags(first), true
	if len(samples) > 1 {
		restFlags = sampleFlags(samples[1])
	}
	for _, s := range samples[1:] {
		sameRest = sameRest && sampleFlags(s) == restFlags
	}

	trun.Flags = mp4.TrunDataOffsetPresentFlag
	trun.Version = 0
	if sameDur {
		tfhd.Flags |= mp4.TfhdDefaultSampleDurationPresentFlag
		tfhd.DefaultSampleDuration = first.dur
	} else {
		trun.Flags |= mp4.TrunSampleDurationPresentFlag
	}
	if sameSize {
		tfhd.Flags |= mp4.TfhdDefaultSampleSizePresentFlag
		tfhd.DefaultSampleSize = first.size
	} else {
		trun.Flags |= mp4.TrunSampleSizePresentFlag
	}
	if sameRest {
		tfhd.Flags |= mp4.TfhdDefaultSampleFlagsPresentFlag
		tfhd.DefaultSampleFlags = restFlags
		if f := sampleFlags(first); f != restFlags {
			trun.SetFirstSampleFlags(f)
		}
	} else {
		trun.Flags |= mp4.TrunSampleFlagsPresentFlag
	}
	if !zeroCTO {
		trun.Flags |= mp4.TrunSampleCompositionTimeOffsetPresentFlag
		if negative {
			trun.Version = 1 // signed composition offsets, ISO/IEC 14496-12 §8.8.8
		}
	}
}
