//! Argon2id password hashing, on the blocking pool so a login never stalls
//! the async workers, and behind a semaphore sized to the machine: each
//! hash takes ~19 MiB and a core for a while, so excess sign-ins wait a
//! bounded time for a slot and are then refused cleanly (503), instead of
//! starting hundreds of hashes at once.

use std::{sync::Arc, time::Duration};

use argon2::{
    Argon2,
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng},
};
use tokio::sync::Semaphore;

use crate::error::{AppError, AppResult};

/// Hashes and checks passwords, a bounded number at a time.
pub struct Passwords {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl Passwords {
    /// At most `concurrency` hashes at once; a caller waits at most `wait`.
    pub fn new(concurrency: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    /// Hashes a password with Argon2id and a random salt (PHC string).
    pub async fn hash(&self, password: String) -> AppResult<String> {
        self.run(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(password.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| AppError::internal(anyhow::anyhow!("password hashing failed: {e}")))
        })
        .await?
    }

    /// Checks a password against a stored hash. With no stored hash (or no
    /// such user) it still spends the same time, so response times do not
    /// tell which e-mails exist.
    pub async fn verify(&self, password: String, stored: Option<String>) -> AppResult<bool> {
        self.run(move || {
            let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
            let parsed = PasswordHash::new(&stored)
                .map_err(|e| AppError::internal(anyhow::anyhow!("stored hash is invalid: {e}")))?;
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            Ok(ok && stored != DUMMY_HASH)
        })
        .await?
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> AppResult<T> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| {
                AppError::Overloaded("too many sign-ins at once: retry shortly".to_owned())
            })?
            .map_err(AppError::internal)?;
        let result = tokio::task::spawn_blocking(move || {
            let result = work();
            drop(permit);
            result
        })
        .await
        .map_err(AppError::internal)?;
        Ok(result)
    }
}

/// A valid Argon2id hash of a random password nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Xn8yT6hZ2Iu0JCNpcM0Yj5cG0UoQ1f6bXfGNk2sSg9Y";

#[cfg(test)]
mod tests {
    use super::*;

    fn passwords() -> Passwords {
        Passwords::new(2, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let p = passwords();
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(
            p.verify("correct horse".into(), Some(h.clone()))
                .await
                .unwrap()
        );
        assert!(!p.verify("wrong horse".into(), Some(h)).await.unwrap());
    }

    #[tokio::test]
    async fn a_missing_hash_never_verifies() {
        assert!(!passwords().verify("anything".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn callers_beyond_the_slots_wait_a_bounded_time_then_are_refused() {
        let p = Arc::new(Passwords::new(1, Duration::from_millis(1)));
        let hashes: Vec<_> = (0..4)
            .map(|_| {
                let p = Arc::clone(&p);
                tokio::spawn(async move { p.hash("correct horse".into()).await })
            })
            .collect();
        let mut refused = 0;
        for h in hashes {
            if let Err(AppError::Overloaded(_)) = h.await.unwrap() {
                refused += 1;
            }
        }
        assert!(
            refused >= 1,
            "one slot cannot serve four at once within 1 ms"
        );
    }
}
