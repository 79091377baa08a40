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

/// Writes `s` as a JSON string the way `JSON.stringify` does.
pub(crate) fn write_js_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
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
    fn ascii_escapes() {
        assert_eq!(py("é😀\u{7f}/"), r#""\u00e9\ud83d\ude00\u007f/""#);
        assert_eq!(py("\n\u{1}"), r#""\n\u0001""#);
    }
}
