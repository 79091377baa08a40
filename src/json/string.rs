//! String escaping for the two dialects.
//!
//! - JavaScript `JSON.stringify`: escapes `"` and `\`, the control characters U+0000–U+001F
//!   (as `\b \t \n \f \r` or lowercase `\u00xx`) and nothing else: not `/`, not U+2028/U+2029,
//!   not U+007F, not non-ASCII. (Lone surrogates, which `JSON.stringify` writes as `\udxxx`,
//!   cannot occur in a Rust `str`.)
//! - Python `json.dumps` with `ensure_ascii=True`: additionally escapes everything outside
//!   U+0020–U+007E (so U+007F too) as lowercase `\uxxxx`, astral characters as a surrogate pair.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 0 = copy as is, b'u' = `\u00xx`, anything else = the short escape letter.
static JS_ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

fn push_u(out: &mut Vec<u8>, unit: u32) {
    out.extend_from_slice(&[
        b'\\',
        b'u',
        HEX[((unit >> 12) & 0xf) as usize],
        HEX[((unit >> 8) & 0xf) as usize],
        HEX[((unit >> 4) & 0xf) as usize],
        HEX[(unit & 0xf) as usize],
    ]);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero if any byte of `w` is `"`, `\\` or below 0x20 (SWAR; may flag a byte ≥ 0x80 as a
/// false positive, which the byte-wise slow path then skips).
#[inline]
fn needs_js_escape(w: u64) -> u64 {
    let quote = w ^ (LO * u64::from(b'"'));
    let backslash = w ^ (LO * u64::from(b'\\'));
    (quote.wrapping_sub(LO) | backslash.wrapping_sub(LO) | w.wrapping_sub(LO * 0x20)) & HI
}

/// Length of the prefix of `bytes` that needs no escaping for JavaScript.
#[inline]
fn js_clean_prefix(bytes: &[u8]) -> usize {
    let mut i = 0;
    for chunk in bytes.chunks_exact(8) {
        let w = u64::from_le_bytes([
            chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
        ]);
        if needs_js_escape(w) != 0 {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && JS_ESCAPE[bytes[i] as usize] == 0 {
        i += 1;
    }
    i
}

/// Writes `s` as a JSON string the way `JSON.stringify` does.
pub(crate) fn write_js_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let clean = js_clean_prefix(bytes);
    if clean == bytes.len() {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    out.push(b'"');
    out.extend_from_slice(&bytes[..clean]);
    let mut start = clean;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let esc = JS_ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if esc == b'u' {
            push_u(out, u32::from(b));
        } else {
            out.extend_from_slice(&[b'\\', esc]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes `s` as a JSON string the way Python's `json.dumps(…, ensure_ascii=True)` does.
pub(crate) fn write_ascii_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            i += 1;
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if b < 0x80 {
            let esc = JS_ESCAPE[b as usize];
            if esc == 0 || esc == b'u' {
                // control characters and U+007F
                push_u(out, u32::from(b));
            } else {
                out.extend_from_slice(&[b'\\', esc]);
            }
            i += 1;
        } else {
            // A multi-byte UTF-8 sequence: decode one char.
            let rest = &s[i..];
            let c = rest.chars().next().unwrap_or('\u{fffd}');
            let cp = c as u32;
            if cp >= 0x1_0000 {
                let v = cp - 0x1_0000;
                push_u(out, 0xd800 | (v >> 10));
                push_u(out, 0xdc00 | (v & 0x3ff));
            } else {
                push_u(out, cp);
            }
            i += c.len_utf8();
        }
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(s: &str) -> String {
        let mut v = Vec::new();
        write_js_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    fn py(s: &str) -> String {
        let mut v = Vec::new();
        write_ascii_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn js_escapes() {
        assert_eq!(js("a/b"), r#""a/b""#);
        assert_eq!(js("\u{2028}é😀"), "\"\u{2028}é😀\"");
        assert_eq!(
            js("\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}"),
            r#""\"\\\n\r\t\b\f\u0001\u001f"#.to_owned() + "\u{7f}\""
        );
    }

    #[test]
    fn swar_scan_agrees_with_the_table() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut chunk = *b"abcdefgh";
                chunk[pos] = b;
                let flagged = needs_js_escape(u64::from_le_bytes(chunk)) != 0;
                if JS_ESCAPE[b as usize] != 0 {
                    assert!(flagged, "byte {b:#x} at {pos} must be flagged");
                }
            }
        }
        assert_eq!(needs_js_escape(u64::from_le_bytes(*b"abcdefgh")), 0);
        let long = "0123456789abcdef/é😀\u{2028}\"x";
        assert_eq!(js(long), "\"0123456789abcdef/é😀\u{2028}\\\"x\"");
    }

    #[test]
    fn ascii_escapes() {
        assert_eq!(py("é😀\u{7f}/"), r#""\u00e9\ud83d\ude00\u007f/""#);
        assert_eq!(py("\n\u{1}"), r#""\n\u0001""#);
    }
}
