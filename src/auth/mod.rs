//! Who is calling: bearer tokens, password hashing, and the `Viewer` every
//! resolver checks before it reads or writes.

pub mod jwt;
pub mod password;

use std::time::Duration;

use moka::future::Cache;
use sea_orm::DatabaseConnection;

use crate::{
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
}

/// Verifies tokens and resolves them to a current [`Viewer`].
///
/// The user's role and active flag are read from the database through a
/// small cache (a few seconds) so the hot path does not pay a query per
/// request; changes made on this replica drop the cached entry at once.
pub struct Authenticator {
    keys: JwtKeys,
    identities: Cache<i64, Option<Viewer>>,
    passwords: password::Passwords,
}

impl Authenticator {
    pub fn new(keys: JwtKeys, passwords: password::Passwords) -> Self {
        Self {
            keys,
            identities: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(5))
                .build(),
            passwords,
        }
    }

    /// Password hashing, a bounded number at a time.
    pub fn passwords(&self) -> &password::Passwords {
        &self.passwords
    }

    /// A token for `user`.
    pub fn issue(&self, user: &user::Model) -> AppResult<String> {
        self.keys
            .issue(TokenSubject {
                user_id: user.id,
                team_id: user.team_id,
            })
            .map_err(AppError::internal)
    }

    /// `None` when there is no token: the request is anonymous, and only
    /// sign-up, login and introspection will work. A bare `Bearer` (what
    /// GraphiQL sends before a token is pasted) counts as no token.
    pub async fn authenticate(
        &self,
        db: &DatabaseConnection,
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
        let viewer = self.identity(db, subject.user_id).await?;
        match viewer {
            Some(v) if v.team_id == subject.team_id => Ok(Some(v)),
            _ => Err(AuthError::Inactive.into()),
        }
    }

    async fn identity(
        &self,
        db: &DatabaseConnection,
        user_id: i64,
    ) -> Result<Option<Viewer>, AuthResolveError> {
        let loaded = self
            .identities
            .try_get_with(user_id, async move {
                let user = db::users::find_any(db, user_id).await?;
                Ok::<_, sea_orm::DbErr>(user.filter(|u| u.is_active).map(|u| Viewer {
                    user_id: u.id,
                    team_id: u.team_id,
                    role: u.role,
                }))
            })
            .await;
        loaded.map_err(|e| AuthResolveError::Database(anyhow::anyhow!("{e}")))
    }

    /// Drops the cached identity after a role or active-flag change.
    pub async fn forget(&self, user_id: i64) {
        self.identities.invalidate(&user_id).await;
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
