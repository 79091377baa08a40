//! Differential tests of the JSON writer: our bytes must equal what Node computes for
//! `JSON.stringify(JSON.parse(x))` and what Python computes for
//! `json.dumps(json.loads(x), separators=(',', ':'))`, over one generated corpus.
//!
//! Each test feeds the whole corpus to one interpreter process (hex-encoded JSON lines) and
//! prints `SKIPPED: <interpreter> not found` when the interpreter is absent.

use std::io::Write as _;
use std::process::{Command, Stdio};

use hookrelay::json;

/// Why an entry is expected to be refused by our side.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// We must produce exactly the interpreter's bytes.
    Same,
    /// JavaScript would change this integer: our writer refuses it.
    UnsafeInteger,
    /// A lone surrogate: Rust strings cannot hold it, parsing refuses it.
    LoneSurrogate,
    /// Out of `f64` range: parsing refuses it.
    OutOfRange,
}

struct Entry {
    text: String,
    js: Expect,
    /// Whether Python comparison applies (serde_json cannot tell Python's `-0` int from
    /// `-0.0`, nor hold integers beyond 64 bits).
    python: bool,
}

fn e(text: &str, js: Expect, python: bool) -> Entry {
    Entry {
        text: text.to_owned(),
        js,
        python,
    }
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &[
    "10",
    "2",
    "-1",
    "01",
    "4294967295",
    "4294967294",
    "0",
    "1",
    "a",
    "b",
    "Z",
    "é",
    "\\u2028",
    "😀",
    "",
    "1.0",
    " 1",
    "00",
    "+1",
    "1e3",
    "\\ud83d\\ude00",
    "\\u0001",
    "/",
    "\\/",
    "id",
];

const STRINGS: &[&str] = &[
    "",
    "plain",
    "a/b",
    "\\/",
    "\\u2028\\u2029",
    "\u{2028}",
    "😀",
    "\\ud83d\\ude00",
    "é",
    "\\u00e9",
    "\\u0000\\u0001\\u001f",
    "\\u007f",
    "\u{7f}",
    "\\b\\f\\n\\r\\t",
    "\\\"\\\\",
    "\\u0008",
    "日本",
    "\\uFFFF",
    "\\uffff",
    "\u{10ffff}",
    "tab\\there",
    "<script>",
    "\\u0041",
];

fn gen_number(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => (rng.below(1 << 53) as i64 - (1 << 52)).to_string(),
        1 => rng.below(1000).to_string(),
        2 => {
            // Any finite double, written as Rust's shortest form, maybe with exponent.
            loop {
                let f = f64::from_bits(rng.next());
                if f.is_finite() {
                    break if rng.below(2) == 0 {
                        format!("{f:e}")
                    } else {
                        format!("{f:?}")
                    };
                }
            }
        }
        3 => format!("{}.{:02}", rng.below(100_000), rng.below(100)),
        4 => format!("{}e{}", rng.below(1000), rng.below(60) as i64 - 30),
        5 => format!("{}E+{}", rng.below(10), rng.below(25)),
        6 => format!("-{}.{}", rng.below(10), rng.below(1_000_000)),
        _ => [
            "0", "-0.0", "1.0", "0.1", "1e21", "1e-7", "123e-20", "0.000001", "1e20",
        ][rng.below(9) as usize]
            .to_owned(),
    }
}

fn gen_value(rng: &mut Rng, depth: u32, out: &mut String) {
    let kind = if depth == 0 {
        rng.below(4)
    } else {
        rng.below(6)
    };
    match kind {
        0 => out.push_str(&gen_number(rng)),
        1 => {
            out.push('"');
            out.push_str(rng.pick(STRINGS));
            out.push('"');
        }
        2 => out.push_str(["true", "false", "null"][rng.below(3) as usize]),
        3 => out.push_str(&gen_number(rng)),
        4 => {
            out.push('[');
            for i in 0..rng.below(4) {
                if i > 0 {
                    out.push(',');
                }
                gen_value(rng, depth - 1, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            let mut used = Vec::new();
            for _ in 0..rng.below(7) {
                let k = rng.pick(KEYS);
                // Equal keys after unescaping are legal JSON but make the output depend on
                // duplicate handling, tested separately below.
                if used.contains(&k)
                    || (k == "\\/" && used.contains(&"/"))
                    || (k == "/" && used.contains(&"\\/"))
                {
                    continue;
                }
                if !used.is_empty() {
                    out.push(',');
                }
                used.push(k);
                out.push('"');
                out.push_str(k);
                out.push_str("\":");
                gen_value(rng, depth - 1, out);
            }
            out.push('}');
        }
    }
}

fn corpus() -> Vec<Entry> {
    use Expect::*;
    let mut c = vec![
        e(
            r#"{"10":1,"2":2,"-1":3,"01":4,"4294967295":5,"4294967294":6,"b":7,"a":8,"0":9}"#,
            Same,
            true,
        ),
        e(
            r#"{"b":{"3":[{"1":1,"x":2,"0":0}],"a":1},"1":{"z":1,"2":2}}"#,
            Same,
            true,
        ),
        e(r#"{"a":1,"a":2,"b":3}"#, Same, true),
        e(r#"{"1":"x","a":0,"1":"y"}"#, Same, true),
        e("1e21", Same, true),
        e("1e20", Same, true),
        e("1.0", Same, true),
        e("-0", Same, false),
        e("-0.0", Same, true),
        e("[0,-0,0.0,-0.0]", Same, false),
        e("0.1", Same, true),
        e("1e-7", Same, true),
        e("1.5e-7", Same, true),
        e("0.000001", Same, true),
        e("0.0000001", Same, true),
        e("123456789012345678901234567890", Same, false),
        e("1.7976931348623157e308", Same, true),
        e("5e-324", Same, true),
        e("4.9", Same, true),
        e("500.00", Same, true),
        e("[500.00,450.50,0.10,1E2,1e+2,-1E-2]", Same, true),
        e("9007199254740991", Same, true),
        e("9007199254740992", Same, true),
        e("-9007199254740992", Same, true),
        e("9007199254740993", UnsafeInteger, true),
        e("-9007199254740993", UnsafeInteger, true),
        e("9007199254740994", Same, true),
        e("1152921504606846976", UnsafeInteger, true),
        e("18446744073709551615", UnsafeInteger, true),
        e("18446744073709551616", Same, false),
        e("1E400", OutOfRange, false),
        e(r#""\u2028\u2029""#, Same, true),
        e("\"\u{2028}\u{2029}\"", Same, true),
        e(r#""a/b\/c""#, Same, true),
        e("\"😀\"", Same, true),
        e(r#""\ud83d\ude00""#, Same, true),
        e(r#""\u0000\u0001\u001f\u007f\u0080""#, Same, true),
        e(r#""\b\f\n\r\t\"\\""#, Same, true),
        e(r#""\ud800""#, LoneSurrogate, false),
        e(r#""x\udc00y""#, LoneSurrogate, false),
        e(r#"{"\ud83d":1}"#, LoneSurrogate, false),
        e(r#"{"é":"é","\u00e9x":1}"#, Same, true),
        e("{}", Same, true),
        e("[]", Same, true),
        e(r#""""#, Same, true),
        e("true", Same, true),
        e("null", Same, true),
        e(" \n\t{ \"a\" : [ 1 , 2 ] , \"b\" : { } } \r\n", Same, true),
        e(
            r#"{"amount":500.00,"rating":4.9,"refund":0,"budget":550.00}"#,
            Same,
            true,
        ),
    ];
    let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    c.push(e(&deep, Same, true));
    let mut nested = String::new();
    for i in 0..40 {
        nested.push_str(&format!("{{\"{}\":1,\"k\":", 40 - i));
    }
    nested.push_str("null");
    nested.push_str(&"}".repeat(40));
    c.push(e(&nested, Same, true));

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let mut s = String::new();
        gen_value(&mut rng, 4, &mut s);
        c.push(Entry {
            text: s,
            js: Same,
            python: true,
        });
    }
    c
}

/// Runs `program args…` once over all inputs (hex lines in, hex lines or `ERR` out).
fn run_batch(program: &str, args: &[&str], inputs: &[&str]) -> Option<Vec<Option<Vec<u8>>>> {
    if Command::new(program).arg("--version").output().is_err() {
        return None;
    }
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn interpreter");
    let mut stdin = child.stdin.take().unwrap();
    let payload: String = inputs
        .iter()
        .map(|t| format!("{}\n", hex(t.as_bytes())))
        .collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(payload.as_bytes()).unwrap();
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(output.status.success(), "{program} failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<Option<Vec<u8>>> = text
        .lines()
        .map(|l| if l == "ERR" { None } else { Some(unhex(l)) })
        .collect();
    assert_eq!(lines.len(), inputs.len());
    Some(lines)
}

/// Reports a skip on the real stderr, which the test harness does not capture.
fn skipped(interpreter: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {interpreter} not found");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const NODE: &str = r#"
const rl = require('readline').createInterface({ input: process.stdin });
const out = [];
rl.on('line', (l) => {
  const t = Buffer.from(l, 'hex').toString('utf8');
  try { out.push(Buffer.from(JSON.stringify(JSON.parse(t)), 'utf8').toString('hex')); }
  catch (e) { out.push('ERR'); }
});
rl.on('close', () => process.stdout.write(out.join('\n') + '\n'));
"#;

const PYTHON: &str = r#"
import sys, json
out = []
for line in sys.stdin:
    t = bytes.fromhex(line.strip()).decode('utf-8')
    try:
        out.append(json.dumps(json.loads(t), separators=(',', ':')).encode('utf-8').hex())
    except Exception:
        out.append('ERR')
sys.stdout.write('\n'.join(out) + '\n')
"#;

fn ours(text: &str, options: json::WriterOptions) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("parse: {e}"))?;
    json::to_vec_with(&value, options).map_err(|e| format!("write: {e}"))
}

#[test]
fn writer_matches_node_json_stringify() {
    let corpus = corpus();
    let inputs: Vec<&str> = corpus.iter().map(|e| e.text.as_str()).collect();
    let Some(node) = run_batch("node", &["-e", NODE], &inputs) else {
        skipped("node");
        return;
    };
    let mut same = 0;
    for (entry, expected) in corpus.iter().zip(node) {
        let expected = expected.unwrap_or_else(|| panic!("node rejected {:?}", entry.text));
        let got = ours(&entry.text, json::WriterOptions::javascript());
        match entry.js {
            Expect::Same => {
                let got = got.unwrap_or_else(|e| panic!("{e} for {:?}", entry.text));
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&expected),
                    "input {:?}",
                    entry.text
                );
                // And it is a fixed point: writing our output again gives the same bytes.
                let again = ours(
                    std::str::from_utf8(&got).unwrap(),
                    json::WriterOptions::javascript(),
                );
                assert_eq!(again.unwrap(), got);
                same += 1;
            }
            Expect::UnsafeInteger => {
                let err = got.unwrap_err();
                assert!(err.contains("beyond 2^53"), "{err}");
                // Node indeed changes it.
                assert_ne!(expected, entry.text.as_bytes(), "{}", entry.text);
            }
            Expect::LoneSurrogate | Expect::OutOfRange => {
                assert!(got.unwrap_err().starts_with("parse:"), "{}", entry.text);
            }
        }
    }
    println!("node differential: {same} entries byte-identical");
    assert!(same > 2000);
}

#[test]
fn ascii_writer_matches_python_json_dumps() {
    let corpus = corpus();
    let selected: Vec<&Entry> = corpus.iter().filter(|e| e.python).collect();
    let inputs: Vec<&str> = selected.iter().map(|e| e.text.as_str()).collect();
    let Some(python) = run_batch("python3", &["-c", PYTHON], &inputs) else {
        skipped("python3");
        return;
    };
    let mut same = 0;
    for (entry, expected) in selected.iter().zip(python) {
        let expected = expected.unwrap_or_else(|| panic!("python rejected {:?}", entry.text));
        let got = ours(&entry.text, json::WriterOptions::python_ascii())
            .unwrap_or_else(|e| panic!("{e} for {:?}", entry.text));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected),
            "input {:?}",
            entry.text
        );
        same += 1;
    }
    println!("python differential: {same} entries byte-identical");
    assert!(same > 2000);
}

#[test]
fn seed_bodies_survive_node_round_trip() {
    // Every event body we would send for the seed examples is a fixed point for Node.
    use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasklink");
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&raw).unwrap();
        bodies.push(String::from_utf8(env.to_js_bytes().unwrap()).unwrap());
    }
    let inputs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let Some(node) = run_batch("node", &["-e", NODE], &inputs) else {
        skipped("node");
        return;
    };
    for (body, back) in bodies.iter().zip(node) {
        assert_eq!(back.unwrap(), body.as_bytes());
    }
}

#[test]
fn seed_bodies_survive_python_round_trip() {
    // The ASCII mode is a fixed point for TaskLink's documented Python receiver too.
    use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tasklink");
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let raw = std::fs::read(entry.unwrap().path()).unwrap();
        let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(&raw).unwrap();
        bodies.push(String::from_utf8(env.to_python_ascii_bytes().unwrap()).unwrap());
    }
    let inputs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let Some(python) = run_batch("python3", &["-c", PYTHON], &inputs) else {
        skipped("python3");
        return;
    };
    assert_eq!(bodies.len(), 13);
    for (body, back) in bodies.iter().zip(python) {
        assert_eq!(String::from_utf8(back.unwrap()).unwrap(), *body);
    }
}
