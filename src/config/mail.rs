//! `SMTP_URL`, `SMTP_FROM`, `OUTBOX_DIR`: where mail goes.

use std::path::PathBuf;

use anyhow::bail;

use super::env::Env;
use crate::secret::Secret;

/// Where mail goes.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `SMTP_URL`: `smtp://user:pass@host:port` (plain or `?tls=required`
    /// for STARTTLS) or `smtps://…` (implicit TLS). Unset: the outbox.
    pub smtp_url: Option<Secret>,
    /// `SMTP_FROM` (default `jobgraph <noreply@jobgraph.local>`).
    pub from: String,
    /// `OUTBOX_DIR` (default `outbox`): where messages land without SMTP.
    pub outbox_dir: PathBuf,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "jobgraph <noreply@jobgraph.local>".to_owned(),
            outbox_dir: PathBuf::from("outbox"),
        }
    }
}

impl MailSettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        if let Some(url) = env.get("SMTP_URL") {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                bail!("SMTP_URL must start with smtp:// or smtps://");
            }
            self.smtp_url = Some(Secret::new(url));
        }
        if let Some(from) = env.get("SMTP_FROM") {
            self.from = from;
        }
        if let Some(dir) = env.get("OUTBOX_DIR") {
            self.outbox_dir = PathBuf::from(dir);
        }
        Ok(())
    }
}
