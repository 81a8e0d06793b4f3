//! The layout of keys and values. A value records, by name, the generation
//! of every namespace it was computed under, so both a lookup and the
//! background sweeper can tell a current entry from a stale one.
//!
//! Value: `JG3`, a count, then per namespace its name (length-prefixed) and
//! generation (8 bytes, big-endian), then when it expires (Unix time in
//! milliseconds, 8 bytes: HTTP's `max-age` is the lifetime left), then the
//! response body.

use bytes::{BufMut, Bytes, BytesMut};

use super::Dep;

const FORMAT: &[u8; 3] = b"JG3";

/// How many bytes of a value the sweeper reads to find its header.
pub const HEADER_PROBE: usize = 512;

impl Dep {
    /// The namespace's name inside keys and values.
    pub fn name(self) -> String {
        match self {
            Dep::Jobs => "jobs".to_owned(),
            Dep::Job(id) => format!("job:{id}"),
            Dep::Users => "users".to_owned(),
            Dep::Logs => "logs".to_owned(),
            Dep::Resumes => "resumes".to_owned(),
        }
    }
}

/// `P:{t42}:g:<name>`: the generation of one namespace of one team.
pub fn gen_key(prefix: &str, team_id: i64, name: &str) -> String {
    format!("{prefix}:{{t{team_id}}}:g:{name}")
}

/// The stored value for a body computed under these generations, expiring
/// at `expires_ms` (Unix milliseconds).
pub fn encode(deps: &[Dep], generations: &[u64], expires_ms: u64, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(12 + deps.len() * 24 + body.len());
    out.put_slice(FORMAT);
    out.put_u8(deps.len() as u8);
    for (dep, generation) in deps.iter().zip(generations) {
        let name = dep.name();
        out.put_u8(name.len() as u8);
        out.put_slice(name.as_bytes());
        out.put_u64(*generation);
    }
    out.put_u64(expires_ms);
    out.put_slice(body);
    out.freeze()
}

/// The namespaces and generations a value was made under, and where its
/// body starts.
pub fn header(value: &[u8]) -> Option<(Vec<(String, u64)>, usize)> {
    let (recorded, at) = namespaces(value)?;
    value.get(at..at + 8)?;
    Some((recorded, at + 8))
}

fn namespaces(value: &[u8]) -> Option<(Vec<(String, u64)>, usize)> {
    if value.len() < 4 || &value[..3] != FORMAT {
        return None;
    }
    let count = value[3] as usize;
    let mut at = 4;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = *value.get(at)? as usize;
        let name = std::str::from_utf8(value.get(at + 1..at + 1 + len)?).ok()?;
        let generation =
            u64::from_be_bytes(value.get(at + 1 + len..at + 9 + len)?.try_into().ok()?);
        out.push((name.to_owned(), generation));
        at += 9 + len;
    }
    Some((out, at))
}

/// The body and when it expires (Unix milliseconds), if the value was
/// made under exactly `deps` at `current`.
pub fn decode(value: &Bytes, deps: &[Dep], current: &[Option<u64>]) -> Option<(Bytes, u64)> {
    let (recorded, expires_at) = namespaces(value)?;
    let expires_ms = u64::from_be_bytes(value.get(expires_at..expires_at + 8)?.try_into().ok()?);
    let body_at = expires_at + 8;
    if recorded.len() != deps.len() || current.len() != deps.len() {
        return None;
    }
    for ((name, generation), (dep, now)) in recorded.iter().zip(deps.iter().zip(current)) {
        if *name != dep.name() || Some(*generation) != *now {
            return None;
        }
    }
    Some((value.slice(body_at..), expires_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_only_under_their_own_namespaces_and_generations() {
        let deps = [Dep::Jobs, Dep::Job(7)];
        let value = encode(&deps, &[1, 2], 1_700_000_000_123, b"{\"data\":{}}");
        assert_eq!(
            decode(&value, &deps, &[Some(1), Some(2)]),
            Some((Bytes::from_static(b"{\"data\":{}}"), 1_700_000_000_123))
        );
        assert_eq!(decode(&value, &deps, &[Some(1), Some(3)]), None);
        assert_eq!(decode(&value, &deps, &[Some(1), None]), None);
        assert_eq!(
            decode(&value, &[Dep::Jobs, Dep::Job(8)], &[Some(1), Some(2)]),
            None
        );
        assert_eq!(decode(&Bytes::from_static(b"junk"), &[], &[]), None);
        let (recorded, body_at) = header(&value).unwrap();
        assert_eq!(recorded, [("jobs".to_owned(), 1), ("job:7".to_owned(), 2)]);
        assert_eq!(&value[body_at..], b"{\"data\":{}}");
    }
}
