package captions

// CEA-608 (CTA-608-E) byte pairs, as A/53 cc_data carries them: cc_type 0 is field 1 (CC1,
// CC2), cc_type 1 field 2 (CC3, CC4). Each field interleaves two data channels; a control
// code's first byte says which (bit 3: 0x14 is channel 1, 0x1C channel 2), and the characters
// that follow belong to the channel of the last control code.

// captionStart reports whether the 7-bit pair c1 c2 starts caption data on its channel, and
// which channel of the field (0 or 1): Resume Caption Loading (pop-on), Roll-Up 2, 3 or 4, or
// Resume Direct Captioning (paint-on). Every caption begins with one of them — pop-on
// captions with RCL, roll-up lines with RUn (encoders repeat it before each line), paint-on
// with RDC — so a channel that carries captions shows one again and again, while a channel
// in text mode (TR, RTD: the T1–T4 services, which HLS cannot name), XDS in field 2, stray
// characters and the null padding 0x80 0x80 never do. The miscellaneous control codes' first
// byte is 0x14/0x1C in field 1 and 0x15/0x1D in field 2 (§8.4, table 51); either is accepted
// in either field, as decoders do.
func captionStart(c1, c2 byte) (channel int, ok bool) {
	switch c1 {
	case 0x14, 0x15, 0x1c, 0x1d:
	default:
		return 0, false
	}
	switch c2 {
	case 0x20, // RCL resume caption loading
		0x25, 0x26, 0x27, // RU2, RU3, RU4 roll-up captions
		0x29: // RDC resume direct captioning
		return int(c1 >> 3 & 1), true
	}
	return 0, false
}

// oddParity reports whether b has an odd number of set bits, as every CEA-608 byte must: a
// byte that fails is a transmission error, and decoders drop the pair (ffmpeg's ccaption_dec
// does; §D.2 asks for it), so a control code seen with bad parity does not count.
func oddParity(b byte) bool {
	b ^= b >> 4
	b ^= b >> 2
	b ^= b >> 1
	return b&1 == 1
}

// cea608Pair notes the channel a field's byte pair starts captions on, if it does.
func (d *Detector) cea608Pair(field int, b1, b2 byte) {
	if !oddParity(b1) || !oddParity(b2) {
		return
	}
	if ch, ok := captionStart(b1&0x7f, b2&0x7f); ok {
		d.cc608[field*2+ch] = true
	}
}
