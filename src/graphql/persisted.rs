//! Persisted queries: Apollo's automatic persisted queries (a client sends
//! the SHA-256 of its document in `extensions.persistedQuery.sha256Hash`,
//! and the text only when the service answers `PERSISTED_QUERY_NOT_FOUND`)
//! and trusted documents (`PERSISTED_QUERIES_ONLY`: only the documents of a
//! manifest run — the lock-down that makes arbitrary documents impossible).
//!
//! Registered documents live in Redis when it is configured, so a hash
//! registered through one replica is known to all of them, and in process
//! otherwise. A request that names a known hash is the same bytes every
//! time, so the executor's plan memo (keyed by those bytes) skips parsing
//! and analysis for it.

use std::{collections::HashMap, path::Path, sync::Arc, time::Duration};

use anyhow::Context;
use async_graphql::Request as GqlRequest;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::{cache::ResponseCache, error::ErrorCode};

/// How long a registered document is kept without use.
const REGISTERED_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why a request's persisted query could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// The persisted documents of one replica.
pub struct PersistedQueries {
    /// Trusted documents by hash (empty unless configured).
    manifest: HashMap<String, Arc<str>>,
    /// Only manifest documents run.
    only: bool,
    /// Registered documents known here (a near copy when Redis holds them).
    local: moka::sync::Cache<String, Arc<str>>,
    cache: Arc<ResponseCache>,
    max_document_bytes: usize,
}

impl PersistedQueries {
    /// `only`: nothing but the manifest runs; documents larger than
    /// `max_document_bytes` are never registered.
    pub fn new(
        manifest: HashMap<String, Arc<str>>,
        only: bool,
        cache: Arc<ResponseCache>,
        max_document_bytes: usize,
    ) -> Self {
        Self {
            manifest,
            only,
            local: moka::sync::Cache::builder()
                .max_capacity(16 * 1024 * 1024)
                .weigher(|k: &String, v: &Arc<str>| {
                    u32::try_from(k.len() + v.len() + 32).unwrap_or(u32::MAX)
                })
                .time_to_idle(REGISTERED_TTL)
                .build(),
            cache,
            max_document_bytes,
        }
    }

    /// Reads a manifest in graphql-codegen's client-preset format:
    /// `{"<sha256 hex>": "<document>", …}`; each hash is checked.
    pub fn read_manifest(path: &Path) -> anyhow::Result<HashMap<String, Arc<str>>> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading PERSISTED_QUERIES_MANIFEST {}", path.display()))?;
        let documents: HashMap<String, String> = serde_json::from_str(&text).with_context(|| {
            format!(
                "PERSISTED_QUERIES_MANIFEST {} is not a {{\"<sha256>\": \"<document>\"}} object",
                path.display()
            )
        })?;
        let mut manifest = HashMap::with_capacity(documents.len());
        for (hash, document) in documents {
            let hash = hash.to_ascii_lowercase();
            anyhow::ensure!(
                sha256_hex(&document) == hash,
                "PERSISTED_QUERIES_MANIFEST {}: the document listed under {hash} does not hash to it",
                path.display()
            );
            manifest.insert(hash, Arc::from(document));
        }
        Ok(manifest)
    }

    /// Gives the request its document: from the manifest or the registered
    /// documents when it names a hash (registering the text it carries with
    /// one), and checks that it may run at all.
    pub async fn resolve(&self, request: &mut GqlRequest) -> Result<(), Refusal> {
        let hash = match persisted_hash(request)? {
            Some(hash) => hash,
            None if self.only => {
                // A document sent as text runs only if it is in the manifest.
                if request.query.is_empty()
                    || !self.manifest.contains_key(&sha256_hex(&request.query))
                {
                    return Err(not_allowed());
                }
                return Ok(());
            }
            None if request.query.trim().is_empty() => {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "the request has no query (or extensions.persistedQuery)",
                ));
            }
            None => return Ok(()),
        };
        if !request.query.is_empty() {
            if sha256_hex(&request.query) != hash {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query",
                ));
            }
            if self.only {
                return match self.manifest.contains_key(&hash) {
                    true => Ok(()),
                    false => Err(not_allowed()),
                };
            }
            self.register(hash, &request.query).await;
            return Ok(());
        }
        let found = match self.manifest.get(&hash) {
            Some(document) => Some(Arc::clone(document)),
            None if self.only => None,
            None => self.registered(&hash).await,
        };
        match found {
            Some(document) => {
                request.query = document.to_string();
                Ok(())
            }
            None => Err(Refusal::new(
                ErrorCode::PersistedQueryNotFound,
                "PersistedQueryNotFound",
            )),
        }
    }

    async fn register(&self, hash: String, document: &str) {
        if document.len() > self.max_document_bytes || self.local.contains_key(&hash) {
            return;
        }
        self.local.insert(hash.clone(), Arc::from(document));
        if let Some(store) = self.store() {
            let key = self.key(&hash);
            let value = Bytes::copy_from_slice(document.as_bytes());
            if let Err(error) = self
                .cache
                .within_timeout("SET", store.set(key, value, Some(REGISTERED_TTL)))
                .await
            {
                // Another replica asks for the text again: one extra round trip.
                tracing::debug!(%error, "registering a persisted query in Redis failed");
            }
        }
    }

    async fn registered(&self, hash: &str) -> Option<Arc<str>> {
        if let Some(document) = self.local.get(hash) {
            return Some(document);
        }
        let store = self.store()?;
        let mut values = self
            .cache
            .within_timeout("GET", store.mget(vec![self.key(hash)]))
            .await
            .ok()?;
        let bytes = values.pop().flatten()?;
        let document: Arc<str> = Arc::from(std::str::from_utf8(&bytes).ok()?);
        // Only what hashes to its name is believed.
        if sha256_hex(&document) != hash {
            return None;
        }
        self.local.insert(hash.to_owned(), Arc::clone(&document));
        Some(document)
    }

    fn store(&self) -> Option<crate::cache::store::Store> {
        self.cache.shared_store()
    }

    fn key(&self, hash: &str) -> String {
        format!("{}:apq:{hash}", self.cache.key_prefix())
    }
}

fn not_allowed() -> Refusal {
    Refusal::new(
        ErrorCode::PersistedQueryNotAllowed,
        "only trusted documents run here (PERSISTED_QUERIES_ONLY): send the hash of a listed one",
    )
}

/// The hash named in `extensions.persistedQuery`, if any (version 1,
/// 64 hex digits).
fn persisted_hash(request: &GqlRequest) -> Result<Option<String>, Refusal> {
    use async_graphql::Value;
    let Some(persisted) = request.extensions.get("persistedQuery") else {
        return Ok(None);
    };
    let bad = |message: &str| Refusal::new(ErrorCode::BadRequest, message);
    let Value::Object(fields) = persisted else {
        return Err(bad("extensions.persistedQuery must be an object"));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(bad("extensions.persistedQuery.version must be 1")),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(Some(hash.to_ascii_lowercase()))
        }
        _ => Err(bad(
            "extensions.persistedQuery.sha256Hash must be 64 hexadecimal digits",
        )),
    }
}

/// Lower-case hex SHA-256, as clients compute it.
pub fn sha256_hex(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_what_clients_compute() {
        // `printf '{ __typename }' | sha256sum`
        assert_eq!(
            sha256_hex("{ __typename }"),
            "7f56e67dd21ab3f30d1ff8b7bed08893f0a0db86449836189b361dd1e56ddb4b"
        );
    }

    #[test]
    fn a_malformed_persisted_query_is_refused() {
        for extensions in [
            serde_json::json!({ "persistedQuery": "x" }),
            serde_json::json!({ "persistedQuery": { "version": 2, "sha256Hash": "a".repeat(64) } }),
            serde_json::json!({ "persistedQuery": { "version": 1, "sha256Hash": "xyz" } }),
        ] {
            let request: GqlRequest =
                serde_json::from_value(serde_json::json!({ "extensions": extensions })).unwrap();
            assert_eq!(
                persisted_hash(&request).unwrap_err().code,
                ErrorCode::BadRequest
            );
        }
    }
}
