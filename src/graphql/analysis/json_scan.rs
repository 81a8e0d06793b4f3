//! A pass over a request body's bytes before it is decoded: decoding a
//! list of 150,000 values into GraphQL values takes longer than refusing
//! it, so lists longer than any argument may hold (`MAX_BULK_JOBS`) and
//! nesting deeper than any input needs are refused here, reading only as
//! far as the first offence. Malformed JSON passes through to the decoder,
//! which reports it.

/// Nesting deeper than this is refused (inputs nest a few levels).
pub const MAX_DEPTH: usize = 32;

/// Why a body was refused: the longest list seen, or the nesting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooMuch {
    List(usize),
    Depth(usize),
}

/// Checks every JSON array of `body` holds at most `max_items` values and
/// nothing nests deeper than [`MAX_DEPTH`].
pub fn check(body: &[u8], max_items: usize) -> Result<(), TooMuch> {
    // Per open bracket: `Some(items so far)` for an array, `None` for an object.
    let mut stack: Vec<Option<usize>> = Vec::new();
    let mut at = 0;
    let mut expecting_value = false;
    while at < body.len() {
        match body[at] {
            b'"' => {
                at += 1;
                while at < body.len() && body[at] != b'"' {
                    at += if body[at] == b'\\' { 2 } else { 1 };
                }
                count_value(&mut stack, &mut expecting_value, max_items)?;
            }
            b'[' | b'{' => {
                count_value(&mut stack, &mut expecting_value, max_items)?;
                stack.push((body[at] == b'[').then_some(0));
                if stack.len() > MAX_DEPTH {
                    return Err(TooMuch::Depth(stack.len()));
                }
                expecting_value = body[at] == b'[';
            }
            b']' | b'}' => {
                stack.pop();
                expecting_value = false;
            }
            b',' => expecting_value = matches!(stack.last(), Some(Some(_))),
            b' ' | b'\t' | b'\n' | b'\r' | b':' => {}
            _ => {
                // A number, true, false or null: one value.
                count_value(&mut stack, &mut expecting_value, max_items)?;
                while at + 1 < body.len() && !b",]} \t\n\r".contains(&body[at + 1]) {
                    at += 1;
                }
            }
        }
        at += 1;
    }
    Ok(())
}

/// Counts a value that starts directly inside an array.
fn count_value(
    stack: &mut [Option<usize>],
    expecting: &mut bool,
    max_items: usize,
) -> Result<(), TooMuch> {
    if *expecting && let Some(Some(items)) = stack.last_mut() {
        *items += 1;
        if *items > max_items {
            return Err(TooMuch::List(*items));
        }
    }
    *expecting = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_counted_at_every_level() {
        assert_eq!(check(br#"{"a":[1,2,3]}"#, 3), Ok(()));
        assert_eq!(check(br#"{"a":[1,2,3,4]}"#, 3), Err(TooMuch::List(4)));
        assert_eq!(
            check(br#"{"a":[[1],[2],{"b":[1,2,3,4]}]}"#, 3),
            Err(TooMuch::List(4))
        );
        assert_eq!(check(br#"{"s":"[1,2,3,4,5]","t":"\"[,,,,]"}"#, 3), Ok(()));
        assert_eq!(check(br#"[{"q":1},{"q":2}]"#, 3), Ok(()));
        assert_eq!(check(b"[]", 0), Ok(()));
        assert_eq!(check(br#"{"a":["x","y"]}"#, 1), Err(TooMuch::List(2)));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        assert_eq!(
            check(deep.as_bytes(), 10),
            Err(TooMuch::Depth(MAX_DEPTH + 1))
        );
        assert_eq!(check("[".repeat(MAX_DEPTH).as_bytes(), 10), Ok(()));
    }

    #[test]
    fn garbage_passes_to_the_decoder() {
        for junk in [&b"\xff\xfe"[..], b"{", b"\"open", b"]]]]", b"nul"] {
            assert!(check(junk, 10).is_ok());
        }
    }
}
