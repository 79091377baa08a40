//! Decoding the text form of a 32-byte HMAC tag (hex or padded base64) into bytes.
//!
//! Hand-written because the tag has one fixed length: a table lookup per symbol with one
//! validity check at the end beats a general decoder, and verification at 1 KiB spends
//! its budget on hashing, not on parsing headers. Both decoders are strict: exactly one
//! textual form is accepted per tag (upper- and lowercase hex aside), checked against the
//! `hex` and `base64` crates in the tests below.

/// Hex digit values; `0xFF` marks a byte that is not a hex digit.
const HEX_VALUES: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
///
/// Table-driven with no early exit: every digit is looked up, invalid ones are folded into
/// one flag checked at the end.
pub(crate) fn decode_hex32(digits: &[u8]) -> Option<[u8; 32]> {
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (HEX_VALUES[pair[0] as usize], HEX_VALUES[pair[1] as usize]);
        invalid |= (high | low) & 0xF0;
        *byte = (high << 4) | (low & 0x0F);
    }
    (invalid == 0).then_some(out)
}

/// Symbol values of the standard base64 alphabet; `0xFF` marks any other byte.
const BASE64_VALUES: [u8; 256] = {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Decodes the canonical padded base64 of 32 bytes: 43 symbols of the standard alphabet,
/// one `=`, and the last symbol's two unused bits zero (what `base64`'s `STANDARD` engine
/// accepts, and nothing else).
pub(crate) fn decode_base64_32(text: &[u8]) -> Option<[u8; 32]> {
    let text: &[u8; 44] = text.try_into().ok()?;
    if text[43] != b'=' {
        return None;
    }
    let value = |byte: u8| u32::from(BASE64_VALUES[usize::from(byte)]);
    let mut out = [0u8; 32];
    // Any invalid symbol sets a bit above the six value bits.
    let mut invalid = 0u32;
    for (bytes, symbols) in out.chunks_exact_mut(3).zip(text.chunks_exact(4)) {
        let [a, b, c, d] = [symbols[0], symbols[1], symbols[2], symbols[3]].map(value);
        invalid |= a | b | c | d;
        let bits = a << 18 | b << 12 | c << 6 | d;
        bytes.copy_from_slice(&bits.to_be_bytes()[1..]);
    }
    let [a, b, c] = [text[40], text[41], text[42]].map(value);
    invalid |= a | b | c;
    let bits = a << 12 | b << 6 | c;
    out[30] = (bits >> 10) as u8;
    out[31] = (bits >> 2) as u8;
    (invalid & !0x3F == 0 && bits & 0b11 == 0).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::{decode_base64_32, decode_hex32};

    #[test]
    fn hex32_decodes_both_cases_and_rejects_everything_else() {
        let lower = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let expected = hex::decode(lower).unwrap();
        assert_eq!(
            decode_hex32(lower.as_bytes()).unwrap().as_slice(),
            expected.as_slice()
        );
        assert_eq!(
            decode_hex32(lower.to_uppercase().as_bytes())
                .unwrap()
                .as_slice(),
            expected.as_slice()
        );
        for bad in [
            &lower[..63],
            &format!("{lower}0")[..],
            &format!("{}g", &lower[..63])[..],
            &format!("{} ", &lower[..63])[..],
            &format!("{}é", &lower[..62])[..],
            "",
        ] {
            assert!(decode_hex32(bad.as_bytes()).is_none(), "{bad:?}");
        }
        // Every non-hex byte value in every position class is rejected.
        for byte in 0u8..=255 {
            if byte.is_ascii_hexdigit() {
                continue;
            }
            let mut text = lower.as_bytes().to_vec();
            text[10] = byte;
            assert!(decode_hex32(&text).is_none(), "{byte}");
        }
    }

    /// Every byte value at every position, and the trailing-bit and padding variants,
    /// decode exactly when the `base64` crate's strict `STANDARD` engine decodes them to
    /// 32 bytes, and to the same bytes.
    #[test]
    fn base64_32_agrees_with_the_base64_crate() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;

        let reference = |text: &[u8]| {
            let mut out = [0u8; 32];
            match STANDARD.decode_slice(text, &mut out) {
                Ok(32) => Some(out),
                _ => None,
            }
        };
        let tags: [[u8; 32]; 3] = [
            [0; 32],
            [0xFF; 32],
            core::array::from_fn(|i| (i as u8).wrapping_mul(37)),
        ];
        for tag in tags {
            let text = STANDARD.encode(tag).into_bytes();
            assert_eq!(decode_base64_32(&text), Some(tag));
            for position in 0..text.len() {
                for byte in 0u8..=255 {
                    let mut changed = text.clone();
                    changed[position] = byte;
                    assert_eq!(
                        decode_base64_32(&changed),
                        reference(&changed),
                        "{position} {byte}"
                    );
                }
            }
            for bad in [
                &text[..43],
                &text[..42],
                &[text.as_slice(), b"="].concat()[..],
                b"",
            ] {
                assert_eq!(decode_base64_32(bad), None);
                assert_eq!(reference(bad), None);
            }
        }
    }
}
