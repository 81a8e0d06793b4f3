//! A token count taken before the document is parsed. The parser is a
//! recursive-descent PEG; giving it a document of a million tokens costs
//! far more than refusing it, so the count stops as soon as it passes the
//! limit, having read only that far. It follows the GraphQL lexical grammar
//! closely enough to count what the parser would: whitespace, commas and
//! comments are ignored, a string or a number is one token, `...` is one.

/// The tokens of a document, if there are at most `max` of them; otherwise
/// `Err(max + 1)`, the count at which it stopped reading.
pub fn count_tokens(source: &str, max: usize) -> Result<usize, usize> {
    let bytes = source.as_bytes();
    let mut at = 0;
    let mut tokens = 0;
    while at < bytes.len() {
        let b = bytes[at];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                at += 1;
                continue;
            }
            b'#' => {
                while at < bytes.len() && bytes[at] != b'\n' && bytes[at] != b'\r' {
                    at += 1;
                }
                continue;
            }
            b'"' => at = skip_string(bytes, at),
            b'.' if bytes[at..].starts_with(b"...") => at += 3,
            b'_' | b'a'..=b'z' | b'A'..=b'Z' => {
                at += 1;
                while at < bytes.len() && (bytes[at] == b'_' || bytes[at].is_ascii_alphanumeric()) {
                    at += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                at += 1;
                while at < bytes.len()
                    && matches!(bytes[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    at += 1;
                }
            }
            // A byte-order mark is ignored, like whitespace.
            0xEF if bytes[at..].starts_with(&[0xEF, 0xBB, 0xBF]) => {
                at += 3;
                continue;
            }
            // Punctuators and anything the parser will refuse: one token each.
            _ => at += utf8_len(b),
        }
        tokens += 1;
        if tokens > max {
            return Err(tokens);
        }
    }
    Ok(tokens)
}

/// The position after the string (or block string) starting at `at`.
fn skip_string(bytes: &[u8], at: usize) -> usize {
    if bytes[at..].starts_with(b"\"\"\"") {
        let mut i = at + 3;
        while i < bytes.len() {
            if bytes[i] == b'\\' && bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = at + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // An unterminated string ends at the line; the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_counted_as_the_grammar_reads_them() {
        assert_eq!(count_tokens("{ a }", 100), Ok(3));
        assert_eq!(
            count_tokens("query Q($x: Int = -1.5e3) { a(b: $x) }", 100),
            Ok(19)
        );
        assert_eq!(count_tokens("{ a, b # comment { } \n c }", 100), Ok(5));
        assert_eq!(count_tokens(r#"{ a(s: "x \" { } y") ...F }"#, 100), Ok(10));
        assert_eq!(
            count_tokens("{ a(s: \"\"\"block \\\"\"\" { \n }\"\"\") }", 100),
            Ok(8)
        );
        assert_eq!(count_tokens("", 100), Ok(0));
    }

    #[test]
    fn counting_stops_just_past_the_limit() {
        let huge = "{ a }".repeat(1_000_000);
        assert_eq!(count_tokens(&huge, 10), Err(11));
    }

    #[test]
    fn broken_input_is_still_counted_without_panicking() {
        for input in [
            "\"unterminated",
            "\"\"\"open",
            "é ü 漢",
            "\\",
            "-",
            "..",
            "\u{feff}{a}",
        ] {
            assert!(count_tokens(input, 100).is_ok(), "{input}");
        }
    }
}
