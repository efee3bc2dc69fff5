// Package packager turns an ABR ladder of MP4 files into CMAF segments described by HLS and
// DASH manifests (Package), and serves what it made as an origin (Origin).
//
// Flow: each input is opened once (input.go) and its tracks described from their decoder
// configuration (tracks.go); sample tables are walked by cursors, never loaded whole
// (samples.go); the segmenter cuts every track at the reference video's keyframes
// (segmenter.go); track writers copy sample bytes from input to output file (trackwriter.go),
// or, with Options.Encryption, read one fragment's samples into memory and encrypt them with
// Common Encryption (encrypt.go);
// the presentation is built in a hidden folder and renamed into place (publish.go).
package packager
