//! Test helpers: a lossless JSON reader for semantic comparison with exact numbers, and the
//! fixture loader.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// A JSON value whose numbers are exact decimals (normalised text), objects unordered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum J {
    Null,
    Bool(bool),
    /// (negative, digits without leading/trailing zeros, exponent): value = digits × 10^exp.
    Num(bool, String, i64),
    Str(String),
    Arr(Vec<J>),
    Obj(BTreeMap<String, J>),
}

pub fn parse(text: &str) -> J {
    // Validates syntax and escapes first; the reader below assumes well-formed input.
    serde_json::from_str::<serde::de::IgnoredAny>(text).expect("valid json");
    let mut p = P {
        b: text.as_bytes(),
        i: 0,
    };
    let j = p.value();
    p.ws();
    assert_eq!(p.i, p.b.len(), "trailing text");
    j
}

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\n' | b'\r' | b'\t') {
            self.i += 1;
        }
    }
    fn value(&mut self) -> J {
        self.ws();
        match self.b[self.i] {
            b'{' => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.b[self.i] == b'}' {
                    self.i += 1;
                    return J::Obj(m);
                }
                loop {
                    self.ws();
                    let J::Str(k) = self.string() else {
                        unreachable!()
                    };
                    self.ws();
                    assert_eq!(self.b[self.i], b':');
                    self.i += 1;
                    let v = self.value();
                    m.insert(k, v);
                    self.ws();
                    let c = self.b[self.i];
                    self.i += 1;
                    if c == b'}' {
                        return J::Obj(m);
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b[self.i] == b']' {
                    self.i += 1;
                    return J::Arr(a);
                }
                loop {
                    a.push(self.value());
                    self.ws();
                    let c = self.b[self.i];
                    self.i += 1;
                    if c == b']' {
                        return J::Arr(a);
                    }
                }
            }
            b'"' => self.string(),
            b't' => {
                self.i += 4;
                J::Bool(true)
            }
            b'f' => {
                self.i += 5;
                J::Bool(false)
            }
            b'n' => {
                self.i += 4;
                J::Null
            }
            _ => self.number(),
        }
    }
    fn string(&mut self) -> J {
        let start = self.i;
        self.i += 1;
        while self.b[self.i] != b'"' {
            if self.b[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        self.i += 1;
        let s: String = serde_json::from_slice(&self.b[start..self.i]).unwrap();
        J::Str(s)
    }
    fn number(&mut self) -> J {
        let start = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        num(std::str::from_utf8(&self.b[start..self.i]).unwrap())
    }
}

/// Normalises JSON number text to an exact (sign, digits, exponent) triple.
pub fn num(text: &str) -> J {
    let (neg, rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let (mant, exp) = match rest.find(['e', 'E']) {
        Some(p) => (&rest[..p], rest[p + 1..].parse::<i64>().unwrap()),
        None => (rest, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let mut digits = format!("{int}{frac}");
    let mut exp = exp - frac.len() as i64;
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    if digits.is_empty() {
        return J::Num(false, String::new(), 0);
    }
    J::Num(neg, digits, exp)
}

pub fn fixture_dir(profile: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(profile)
}

pub fn fixture(profile: &str, name: &str) -> Vec<u8> {
    let path = fixture_dir(profile).join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// All fixture names (without `.json`) of a profile, sorted.
pub fn fixture_names(profile: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir(profile))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Asserts two JSON texts are semantically equal with exact numbers.
#[track_caller]
pub fn assert_same_json(expected: &[u8], actual: &[u8]) {
    let e = parse(std::str::from_utf8(expected).unwrap());
    let a = parse(std::str::from_utf8(actual).unwrap());
    assert_eq!(
        e,
        a,
        "\nexpected: {}\nactual:   {}",
        String::from_utf8_lossy(expected),
        String::from_utf8_lossy(actual)
    );
}

/// Removes a top-level key from a JSON object text, returning equivalent compact JSON.
pub fn without_key(text: &[u8], key: &str) -> Vec<u8> {
    // Through the lossless reader, so numbers keep their exact text.
    let j = parse(std::str::from_utf8(text).unwrap());
    let J::Obj(mut m) = j else {
        panic!("not an object")
    };
    m.remove(key);
    write(&J::Obj(m)).into_bytes()
}

/// Writes a `J` back as JSON (numbers in exponent form, exact).
pub fn write(j: &J) -> String {
    match j {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Num(_, d, _) if d.is_empty() => "0".into(),
        J::Num(neg, d, e) => format!("{}{d}e{e}", if *neg { "-" } else { "" }),
        J::Str(s) => serde_json::to_string(s).unwrap(),
        J::Arr(a) => format!("[{}]", a.iter().map(write).collect::<Vec<_>>().join(",")),
        J::Obj(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", serde_json::to_string(k).unwrap(), write(v)))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

#[test]
fn lossless_numbers() {
    assert_eq!(num("500.00"), num("500"));
    assert_eq!(num("5e2"), num("500"));
    assert_eq!(num("-0"), num("0"));
    assert_ne!(num("0.1"), num("0.10000000000000001"));
}
