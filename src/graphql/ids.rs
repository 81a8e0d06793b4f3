//! Opaque, typed IDs: `base64url("Job:42")`. Clients pass back what they got;
//! a user ID given where a job ID belongs is refused, not misread.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::{AppError, AppResult};

/// The kinds of object that carry an ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Team,
    User,
    Job,
    Log,
    Resume,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Team => "Team",
            Self::User => "User",
            Self::Job => "Job",
            Self::Log => "Log",
            Self::Resume => "Resume",
        }
    }
}

/// The public ID of row `id` of `kind`.
pub fn encode(kind: Kind, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{id}", kind.name())))
}

/// The row id behind a public ID, which must be of `kind`. `arg` names the
/// argument in the error message.
pub fn decode(kind: Kind, raw: &ID, arg: &str) -> AppResult<i64> {
    let invalid = || AppError::invalid(arg, format!("is not a valid {} ID", kind.name()));
    if raw.len() > 64 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(raw.as_str())
        .map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let (name, id) = text.split_once(':').ok_or_else(invalid)?;
    if name != kind.name() {
        return Err(invalid());
    }
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_keep_their_kind() {
        let id = encode(Kind::Job, 42);
        assert_eq!(decode(Kind::Job, &id, "id").unwrap(), 42);
        assert!(decode(Kind::User, &id, "id").is_err());
        assert!(decode(Kind::Job, &ID("42".into()), "id").is_err());
        assert!(decode(Kind::Job, &encode(Kind::Job, -1), "id").is_err());
    }
}
