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
        match self.verify(header)? {
            Some(subject) => self.resolve(db, cache, subject).await.map(Some),
            None => Ok(None),
        }
    }

    /// Checks the header's token (signature, expiry) without any I/O;
    /// `None` when there is none.
    pub fn verify(&self, header: Option<&str>) -> Result<Option<TokenSubject>, AuthError> {
        let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(None);
        };
        let token = match header.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            None if header.eq_ignore_ascii_case("bearer") => "",
            _ => return Err(AuthError::Malformed),
        };
        if token.is_empty() {
            return Ok(None);
        }
        self.keys
            .verify(token)
            .map(Some)
            .ok_or(AuthError::InvalidToken)
    }

    /// The current viewer behind a verified token.
    pub async fn resolve(
        &self,
        db: &DatabaseConnection,
        cache: &ResponseCache,
        subject: TokenSubject,
    ) -> Result<Viewer, AuthResolveError> {
        let identity = self.identity(db, cache, subject).await?;
        Ok(admit(&identity, subject)?)
    }

    /// The viewer this replica last resolved for `subject` and the `users`
    /// generation it was read under. Trust it only once that generation is
    /// seen to be still current (the cache lookup reads it in the same round
    /// trip); otherwise [`Self::resolve`].
    pub fn remembered(&self, subject: TokenSubject) -> Option<(Viewer, u64)> {
        let known = self.identities.get(&subject.user_id)?;
        admit(&known, subject).ok().map(|v| (v, known.generation))
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

/// Whether what is known of a user lets `subject`'s token in.
fn admit(identity: &Identity, subject: TokenSubject) -> Result<Viewer, AuthError> {
    match identity.viewer {
        Some(v) if v.team_id != subject.team_id => Err(AuthError::Inactive),
        Some(_) if identity.version != subject.version => Err(AuthError::Revoked),
        Some(v) => Ok(v),
        None => Err(AuthError::Inactive),
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
