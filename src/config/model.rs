//! `OPENAI_*`: the chat-completions API that writes resumes.

use std::time::Duration;

use anyhow::bail;

use super::env::Env;
use crate::secret::Secret;

/// Model API settings.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// `OPENAI_API_KEY`: without it the local writer is used.
    pub api_key: Option<Secret>,
    /// `OPENAI_BASE_URL` (default `https://api.openai.com/v1`).
    pub base_url: String,
    /// `OPENAI_MODEL` (default `gpt-4o-mini`).
    pub model: String,
    /// `OPENAI_TIMEOUT_SECS` (default 60).
    pub timeout: Duration,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "gpt-4o-mini".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }
}

impl ModelSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        self.api_key = env.get("OPENAI_API_KEY").map(Secret::new);
        if let Some(url) = env.get("OPENAI_BASE_URL") {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("OPENAI_BASE_URL must be an http(s) URL");
            }
            self.base_url = url;
        }
        if let Some(name) = env.get("OPENAI_MODEL") {
            self.model = name;
        }
        if let Some(d) = env.secs("OPENAI_TIMEOUT_SECS", 1, 600)? {
            self.timeout = d;
        }
        Ok(())
    }
}
