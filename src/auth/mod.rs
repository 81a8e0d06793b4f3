//! Who is calling: bearer tokens, password hashing, and the `Viewer` every
//! resolver checks before it reads or writes.

pub mod jwt;
pub mod password;

use std::time::Duration;

use moka::sync::Cache;
use sea_orm::DatabaseConnection;

use crate::{
    cache::ResponseCache,
    db::{self, entities::user, enums::Role},
    error::{AppError, AppResult},
};
pub use jwt::{JwtKeys, TokenSubject};

/// The authenticated caller of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Viewer {
    pub user_id: i64,
    pub team_id: i64,
    pub role: Role,
}

impl Viewer {
    /// Members and admins write jobs and resumes; viewers only read.
    pub fn require_writer(&self) -> AppResult<()> {
        if self.role.can_write() {
            Ok(())
        } else {
            Err(AppError::forbidden("your role is read-only"))
        }
    }

    /// Managing users needs an admin.
    pub fn require_admin(&self) -> AppResult<()> {
        if self.role.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("only an admin can do this"))
        }
    }
}

/// Why a presented token was refused (the HTTP layer answers 401).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the token is invalid or expired")]
    InvalidToken,
    #[error("the account is deactivated or no longer exists")]
    Inactive,
    #[error("the token was revoked (password or role changed): sign in again")]
    Revoked,
}

/// What was last read of a user, and under which generation of the team's
/// users namespace.
#[derive(Debug, Clone)]
struct Identity {
    /// `None`: deactivated or gone.
    viewer: Option<Viewer>,
    version: i32,
    generation: u64,
}

/// Verifies tokens and resolves them to a current [`Viewer`].
///
/// Every user change bumps its team's `users` generation (through the unit
/// of work); a cached identity is used only while that generation is the
/// one it was read under, so a deactivation, a role change or a password
/// change is seen by the next request on every replica. Reading the
/// generation is one pipelined Redis round trip (or a map lookup in
/// process); a database read happens only after a change. When the
/// generation cannot be read (Redis unreachable, a bump still pending) the
/// identity is read from the database every time.
pub struct Authenticator {
    keys: JwtKeys,
    identities: Cache<i64, Identity>,
    passwords: password::Passwords,
}

impl Authenticator {
    pub fn new(keys: JwtKeys, passwords: password::Passwords) -> Self {
        Self {
            keys,
            identities: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(300))
                .build(),
            passwords,
        }
    }

    /// Password hashing, a bounded number at a time.
    pub fn passwords(&self) -> &password::Passwords {
        &self.passwords
    }

    /// A token for `user`, under its current token version.
    pub fn issue(&self, user: &user::Model) -> AppResult<String> {
        self.keys
            .issue(TokenSubject {
                user_id: user.id,
                team_id: user.team_id,
                version: user.token_version,
            })
            .map_err(AppError::internal)
    }

    /// `None` when there is no token: the request is anonymous, and only
    /// sign-up, login and introspection will work. A bare `Bearer` (what
    /// GraphiQL sends before a token is pasted) counts as no token.
    pub async fn authenticate(
        &self,
        db: &DatabaseConnection,
        cache: &ResponseCache,
        header: Option<&str>,
    ) -> Result<Option<Viewer>, AuthResolveError> {
        let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            None if header.eq_ignore_ascii_case("bearer") => "",
            _ => return Err(AuthError::Malformed.into()),
        };
        if token.is_empty() {
            return Ok(None);
        }
        let subject = self.keys.verify(token).ok_or(AuthError::InvalidToken)?;
        let identity = self.identity(db, cache, subject).await?;
        match identity.viewer {
            Some(v) if v.team_id != subject.team_id => Err(AuthError::Inactive.into()),
            Some(_) if identity.version != subject.version => Err(AuthError::Revoked.into()),
            Some(v) => Ok(Some(v)),
            None => Err(AuthError::Inactive.into()),
        }
    }

    async fn identity(
        &self,
        db: &DatabaseConnection,
        cache: &ResponseCache,
        subject: TokenSubject,
    ) -> Result<Identity, AuthResolveError> {
        // Read before the row, so a change committed in between makes the
        // entry stale rather than the change invisible.
        let generation = cache.users_generation(subject.team_id).await;
        if let Some(generation) = generation
            && let Some(known) = self.identities.get(&subject.user_id)
            && known.generation == generation
        {
            return Ok(known);
        }
        let user = db::users::find_any(db, subject.user_id)
            .await
            .map_err(|e| AuthResolveError::Database(anyhow::anyhow!("{e}")))?;
        let identity = Identity {
            viewer: user.as_ref().filter(|u| u.is_active).map(|u| Viewer {
                user_id: u.id,
                team_id: u.team_id,
                role: u.role,
            }),
            version: user.map_or(0, |u| u.token_version),
            generation: generation.unwrap_or(0),
        };
        if generation.is_some() {
            self.identities.insert(subject.user_id, identity.clone());
        }
        Ok(identity)
    }

    /// Drops a cached identity (this replica sees the change before the
    /// generation round trip would tell it).
    pub async fn forget(&self, user_id: i64) {
        self.identities.invalidate(&user_id);
    }
}

/// A refused token, or a database failure while checking it.
#[derive(Debug, thiserror::Error)]
pub enum AuthResolveError {
    #[error(transparent)]
    Refused(#[from] AuthError),
    #[error("checking the caller's account failed")]
    Database(#[source] anyhow::Error),
}
