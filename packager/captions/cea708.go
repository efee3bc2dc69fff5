package captions

// CEA-708 (CTA-708-E) captions ride in cc_data as DTVCC packets: cc_type 3 starts a packet
// with its header and first byte, cc_type 2 continues it, two bytes at a time and often over
// several pictures. A packet holds service blocks, each with the number of the caption service
// (1–63) it carries data for.

// maxPacket is the largest DTVCC packet: packet_size_code 0 means 128 bytes, header included.
const maxPacket = 128

// dtvcc assembles one DTVCC packet from the cc_data pairs of successive pictures (in
// presentation order: packets are cut in the order pictures are shown).
type dtvcc struct {
	buf []byte
}

// start begins a new packet; whatever the last one had is read first (a packet cut short, as
// when an edit drops pictures, still names the services of its complete blocks).
func (p *dtvcc) start(d *Detector, b1, b2 byte) {
	p.flush(d)
	p.buf = append(p.buf[:0], b1, b2)
}

// add continues the packet; bytes without a started packet are dropped.
func (p *dtvcc) add(d *Detector, b1, b2 byte) {
	if len(p.buf) == 0 {
		return
	}
	p.buf = append(p.buf, b1, b2)
	if len(p.buf) >= p.size() {
		p.flush(d)
	}
}

// size is the packet's length with its header (§5: packet_size_code, 0 meaning 64 pairs).
func (p *dtvcc) size() int {
	if code := int(p.buf[0] & 0x3f); code > 0 {
		return code * 2
	}
	return maxPacket
}

// flush reads the packet's service blocks (§6.2) and notes each service that has data.
func (p *dtvcc) flush(d *Detector) {
	if len(p.buf) == 0 {
		return
	}
	data := p.buf[1:min(len(p.buf), p.size())]
	p.buf = p.buf[:0]
	for pos := 0; pos < len(data); {
		service, size := int(data[pos]>>5), int(data[pos]&0x1f)
		pos++
		if service == 0 {
			return // the null service block: padding to the packet's end
		}
		if service == 7 && size > 0 { // extended_service_number in the next byte
			if pos >= len(data) {
				return
			}
			service = int(data[pos] & 0x3f)
			pos++
			if service < 7 {
				return // an extended number below 7 is not allowed: the packet is corrupt
			}
		}
		if size > len(data)-pos {
			return
		}
		for _, b := range data[pos : pos+size] {
			if b != 0 { // a block of NUL commands (C0 0x00) carries nothing
				d.services[service] = true
				break
			}
		}
		pos += size
	}
}
