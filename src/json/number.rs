//! Number formatting: ECMAScript `Number::toString` and Python `float.__repr__`.
//!
//! Both are defined over the *shortest* decimal digits that round-trip to the same `f64`.
//! Rust's `{:e}` formatting of a float without precision yields exactly those digits
//! (`core::fmt` uses Grisu with a Dragon fallback), so no extra crate is needed: we take the
//! digits and the exponent from it and lay them out the way each language does.

/// Shortest round-trip digits `d1…dk` (no leading or trailing zeros) and `n` such that the
/// value is `0.d1…dk × 10^n` (ECMAScript's `n`, CPython's `decpt`).
pub(crate) struct Digits {
    buf: [u8; 32],
    len: usize,
    pub(crate) n: i32,
}

impl Digits {
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII digits are stored.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("0")
    }

    /// Parses `ryu`'s output (`500.0`, `0.001`, `1e21`, `1.5e-7`) into digits and `n`.
    fn from_ryu(s: &str) -> Self {
        let (mantissa, exp) = match s.find('e') {
            Some(p) => (&s[..p], s[p + 1..].parse::<i32>().unwrap_or(0)),
            None => (s, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let mut d = Digits {
            buf: [0; 32],
            len: 0,
            n: int.len() as i32 + exp,
        };
        let mut leading = true;
        for &c in int.as_bytes().iter().chain(frac.as_bytes()) {
            if leading && c == b'0' {
                d.n -= 1;
                continue;
            }
            leading = false;
            if d.len < d.buf.len() {
                d.buf[d.len] = c;
                d.len += 1;
            }
        }
        while d.len > 1 && d.buf[d.len - 1] == b'0' {
            d.len -= 1;
        }
        d
    }
}

/// The shortest round-trip digits of a finite, non-zero `abs` value (from `ryu`, which picks
/// the shortest and, among those, the closest digits, as ECMAScript and CPython do).
pub(crate) fn shortest_digits(abs: f64) -> Digits {
    debug_assert!(abs.is_finite() && abs > 0.0);
    Digits::from_ryu(ryu::Buffer::new().format_finite(abs))
}

/// Same for an `f32`: its shortest digits (at most 9) are also stable through an `f64` round
/// trip.
pub(crate) fn shortest_digits_f32(abs: f32) -> Digits {
    Digits::from_ryu(ryu::Buffer::new().format_finite(abs))
}

fn push_zeros(out: &mut Vec<u8>, count: i32) {
    for _ in 0..count {
        out.push(b'0');
    }
}

/// Lays out digits the way ECMAScript `Number::toString(10)` does (ECMA-262 §6.1.6.1.20).
pub(crate) fn write_ecma_digits(out: &mut Vec<u8>, negative: bool, digits: &str, n: i32) {
    let k = digits.len() as i32;
    let d = digits.as_bytes();
    if negative {
        out.push(b'-');
    }
    if k <= n && n <= 21 {
        out.extend_from_slice(d);
        push_zeros(out, n - k);
    } else if 0 < n && n <= 21 {
        out.extend_from_slice(&d[..n as usize]);
        out.push(b'.');
        out.extend_from_slice(&d[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        push_zeros(out, -n);
        out.extend_from_slice(d);
    } else {
        let e = n - 1;
        out.push(d[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(e.unsigned_abs()).as_bytes());
    }
}

/// Lays out digits the way CPython's `float.__repr__` does (`format_float_short`, mode `'r'`).
pub(crate) fn write_python_digits(out: &mut Vec<u8>, negative: bool, digits: &str, decpt: i32) {
    let k = digits.len() as i32;
    let d = digits.as_bytes();
    if negative {
        out.push(b'-');
    }
    if decpt <= -4 || decpt > 16 {
        let e = decpt - 1;
        out.push(d[0]);
        if k > 1 {
            out.push(b'.');
            out.extend_from_slice(&d[1..]);
        }
        out.push(b'e');
        out.push(if e < 0 { b'-' } else { b'+' });
        let abs = e.unsigned_abs();
        if abs < 10 {
            out.push(b'0');
        }
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(abs).as_bytes());
    } else if decpt <= 0 {
        out.extend_from_slice(b"0.");
        push_zeros(out, -decpt);
        out.extend_from_slice(d);
    } else if decpt >= k {
        out.extend_from_slice(d);
        push_zeros(out, decpt - k);
        out.extend_from_slice(b".0");
    } else {
        out.extend_from_slice(&d[..decpt as usize]);
        out.push(b'.');
        out.extend_from_slice(&d[decpt as usize..]);
    }
}

/// Writes a finite `f64` as ECMAScript would (`-0` becomes `0`).
pub(crate) fn write_ecma_f64(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.push(b'0');
        return;
    }
    let d = shortest_digits(v.abs());
    write_ecma_digits(out, v < 0.0, d.as_str(), d.n);
}

/// Writes a finite `f64` as Python's `repr` would (`-0.0` stays `-0.0`).
pub(crate) fn write_python_f64(out: &mut Vec<u8>, v: f64) {
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() {
            b"-0.0"
        } else {
            b"0.0"
        });
        return;
    }
    let d = shortest_digits(v.abs());
    write_python_digits(out, v < 0.0, d.as_str(), d.n);
}

/// The ECMAScript string for a finite `f64`, as an owned `String`.
pub(crate) fn ecma_string(v: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_ecma_f64(&mut out, v);
    // Only ASCII digits, signs, '.', 'e' are written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ecma(v: f64) -> String {
        ecma_string(v)
    }

    fn py(v: f64) -> String {
        let mut out = Vec::new();
        write_python_f64(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ecma_layouts() {
        assert_eq!(ecma(500.0), "500");
        assert_eq!(ecma(-0.0), "0");
        assert_eq!(ecma(1e21), "1e+21");
        assert_eq!(ecma(1e20), "100000000000000000000");
        assert_eq!(ecma(1e-7), "1e-7");
        assert_eq!(ecma(1.5e-7), "1.5e-7");
        assert_eq!(ecma(0.000001), "0.000001");
        assert_eq!(ecma(4.9), "4.9");
        assert_eq!(ecma(-123.456), "-123.456");
        assert_eq!(ecma(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(ecma(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(ecma(5e-324), "5e-324");
    }

    #[test]
    fn python_layouts() {
        assert_eq!(py(500.0), "500.0");
        assert_eq!(py(-0.0), "-0.0");
        assert_eq!(py(1e21), "1e+21");
        assert_eq!(py(1e16), "1e+16");
        assert_eq!(py(1e15), "1000000000000000.0");
        assert_eq!(py(0.0001), "0.0001");
        assert_eq!(py(0.00001), "1e-05");
        assert_eq!(py(1.5e-7), "1.5e-07");
        assert_eq!(py(4.9), "4.9");
        assert_eq!(py(1e100), "1e+100");
    }
}
