//! Finding the JPEG streams embedded in other files (enlightenment's `.edj`
//! Eet archives).

/// A JPEG stream found inside a byte buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JpegStream {
    pub offset: usize,
    pub len: usize,
}

/// Length (SOI..EOI inclusive) of a structurally valid JPEG stream starting
/// at `start`, or `None`. Walks the marker segments (so `FFD9` inside an
/// APPn/EXIF thumbnail does not end the stream) and the entropy-coded data
/// after each SOS (skipping `FF00` stuffing and `RSTn`).
pub fn jpeg_stream_len(b: &[u8], start: usize) -> Option<usize> {
    if b.len() < start + 4 || b[start] != 0xFF || b[start + 1] != 0xD8 || b[start + 2] != 0xFF {
        return None;
    }
    let mut i = start + 2;
    loop {
        if i + 1 >= b.len() || b[i] != 0xFF {
            return None;
        }
        while i + 1 < b.len() && b[i + 1] == 0xFF {
            i += 1; // fill bytes
        }
        if i + 1 >= b.len() {
            return None;
        }
        let marker = b[i + 1];
        i += 2;
        match marker {
            0xD9 => return Some(i - start),
            0xD0..=0xD7 | 0x01 => continue,
            0xD8 | 0x00 => return None,
            _ => {
                if i + 2 > b.len() {
                    return None;
                }
                let len = ((b[i] as usize) << 8) | b[i + 1] as usize;
                if len < 2 {
                    return None;
                }
                i += len;
                if marker == 0xDA {
                    // Entropy-coded segment: runs to the next marker that is
                    // neither stuffing (FF00) nor a restart (FFD0..FFD7).
                    loop {
                        if i + 1 >= b.len() {
                            return None;
                        }
                        if b[i] == 0xFF {
                            let n = b[i + 1];
                            if n == 0x00 || (0xD0..=0xD7).contains(&n) {
                                i += 2;
                                continue;
                            }
                            if n == 0xFF {
                                i += 1;
                                continue;
                            }
                            break;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
}

/// All structurally valid JPEG streams (`FFD8FF ... FFD9`) in `bytes`, in
/// order, not overlapping. Candidate SOI markers that do not parse are skipped.
pub fn find_jpeg_streams(bytes: &[u8]) -> Vec<JpegStream> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 <= bytes.len() {
        if bytes[i] == 0xFF && bytes[i + 1] == 0xD8 && bytes[i + 2] == 0xFF {
            if let Some(len) = jpeg_stream_len(bytes, i) {
                out.push(JpegStream { offset: i, len });
                i += len;
                continue;
            }
        }
        i += 1;
    }
    out
}
