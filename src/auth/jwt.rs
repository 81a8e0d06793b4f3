//! HS256 bearer tokens: `sub` is the user id, `team` the team id, `ver` the
//! user's token version. The role is not in the token: it is read from the
//! database, and the version checked, on every request (see
//! [`super::Authenticator`]), so a demotion, deactivation or password change
//! takes effect at once.

use std::{path::Path, time::Duration};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    team: i64,
    /// The user's token version when it was issued.
    #[serde(default)]
    ver: i32,
    iat: i64,
    exp: i64,
}

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSubject {
    pub user_id: i64,
    pub team_id: i64,
    /// Must equal the user's current `token_version`.
    pub version: i32,
}

/// Signs and verifies tokens with one HS256 key.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
    /// Tokens whose signature already checked out, with their expiry. A
    /// signed-in client sends the same token with every request, and
    /// checking it (base64, HMAC-SHA256, JSON) was 7 % of the cache-hit
    /// path. Keyed by the whole token, compared exactly (never by a hash of
    /// it); only tokens that verified get in, so forged ones fill nothing.
    verified: moka::sync::Cache<Box<str>, Verified>,
}

/// A token that verified, and until when it stays valid.
#[derive(Debug, Clone, Copy)]
struct Verified {
    subject: TokenSubject,
    /// `exp` plus the validation's leeway, in Unix seconds.
    valid_until: i64,
}

/// How many verified tokens are remembered (about 200 bytes each).
const VERIFIED_TOKENS: u64 = 20_000;

impl JwtKeys {
    pub fn new(secret: &Secret, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 30;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// A token for `subject`, valid for the configured lifetime.
    pub fn issue(&self, subject: TokenSubject) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: subject.user_id.to_string(),
            team: subject.team_id,
            ver: subject.version,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a token failed")
    }

    /// The subject of a valid, unexpired token; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<TokenSubject> {
        let now = chrono::Utc::now().timestamp();
        if let Some(known) = self.verified.get(token) {
            if now <= known.valid_until {
                return Some(known.subject);
            }
            self.verified.invalidate(token);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let subject = TokenSubject {
            user_id: data.claims.sub.parse().ok()?,
            team_id: data.claims.team,
            version: data.claims.ver,
        };
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(0);
        self.verified.insert(
            token.into(),
            Verified {
                subject,
                valid_until: data.claims.exp.saturating_add(leeway),
            },
        );
        Some(subject)
    }
}

/// The embedded default's signing key: read from `path`, or generated (48
/// random bytes) and written there with owner-only permissions on first start.
pub fn load_or_create_secret(path: &Path) -> anyhow::Result<Secret> {
    match std::fs::read_to_string(path) {
        Ok(text) if text.trim().len() >= 32 => return Ok(Secret::new(text.trim())),
        Ok(_) => anyhow::bail!("{} is too short to be a signing key", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret = STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            std::io::Write::write_all(&mut file, secret.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a local JWT signing key");
            Ok(Secret::new(secret))
        }
        // Another process won the race: use its key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_secret(path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&Secret::new(secret), Duration::from_secs(60))
    }

    #[test]
    fn a_remembered_token_is_refused_once_it_expires() {
        let keys = keys("k1-0123456789abcdef0123456789abcdef");
        let subject = TokenSubject {
            user_id: 7,
            team_id: 3,
            version: 2,
        };
        let token = keys.issue(subject).unwrap();
        assert_eq!(keys.verify(&token), Some(subject));
        assert!(keys.verified.contains_key(token.as_str()));
        assert_eq!(keys.verify(&token), Some(subject), "from the memo");
        // The memo says it ran out: refused, and forgotten.
        keys.verified.insert(
            token.as_str().into(),
            Verified {
                subject,
                valid_until: chrono::Utc::now().timestamp() - 1,
            },
        );
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: "7".into(),
                team: 3,
                ver: 2,
                iat: 0,
                exp: chrono::Utc::now().timestamp() - 3_600,
            },
            &keys.encoding,
        )
        .unwrap();
        keys.verified.insert(
            expired.as_str().into(),
            Verified {
                subject,
                valid_until: chrono::Utc::now().timestamp() - 1,
            },
        );
        assert_eq!(keys.verify(&expired), None);
        assert!(!keys.verified.contains_key(expired.as_str()));
        // A token still within its lifetime verifies again from scratch.
        assert_eq!(keys.verify(&token), Some(subject));
    }

    #[test]
    fn a_forged_token_is_never_remembered() {
        let keys = keys("k1-0123456789abcdef0123456789abcdef");
        let other = self::keys("k2-0123456789abcdef0123456789abcdef");
        let forged = other
            .issue(TokenSubject {
                user_id: 1,
                team_id: 1,
                version: 0,
            })
            .unwrap();
        assert_eq!(keys.verify(&forged), None);
        assert!(!keys.verified.contains_key(forged.as_str()));
    }

    #[test]
    fn a_token_verifies_with_its_own_key_only() {
        let subject = TokenSubject {
            user_id: 7,
            team_id: 3,
            version: 2,
        };
        let token = keys("k1-0123456789abcdef0123456789abcdef")
            .issue(subject)
            .unwrap();
        assert_eq!(
            keys("k1-0123456789abcdef0123456789abcdef").verify(&token),
            Some(subject)
        );
        assert_eq!(
            keys("k2-0123456789abcdef0123456789abcdef").verify(&token),
            None
        );
        assert_eq!(
            keys("k1-0123456789abcdef0123456789abcdef").verify("garbage"),
            None
        );
    }

    #[test]
    fn the_generated_secret_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        let first = load_or_create_secret(&path).unwrap();
        let second = load_or_create_secret(&path).unwrap();
        assert_eq!(first.expose(), second.expose());
        assert!(first.expose().len() >= 32);
    }
}
