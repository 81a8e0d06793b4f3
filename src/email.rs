//! Outgoing e-mail through lettre: SMTP when `SMTP_URL` is set, otherwise
//! files in an outbox folder. Messages are sent only from background tasks,
//! so an SMTP outage delays mail but loses none.

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};

use crate::config::MailSettings;

/// A message to send.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends mail.
#[derive(Clone)]
pub enum Mailer {
    Smtp(AsyncSmtpTransport<Tokio1Executor>, Mailbox),
    Outbox(AsyncFileTransport<Tokio1Executor>, Mailbox),
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("SMTP_FROM is not an address: {e}"))?;
        Ok(match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?
                    .timeout(Some(std::time::Duration::from_secs(20)))
                    .build();
                Mailer::Smtp(transport, from)
            }
            None => {
                std::fs::create_dir_all(&settings.outbox_dir).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create the outbox folder {}: {e}",
                        settings.outbox_dir.display()
                    )
                })?;
                Mailer::Outbox(AsyncFileTransport::new(&settings.outbox_dir), from)
            }
        })
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::Smtp(..) => "smtp",
            Self::Outbox(..) => "outbox folder",
        }
    }

    /// Sends `email` with a `Message-ID` derived from `id` (the task), so a
    /// message re-sent after a crash can be recognised as a duplicate.
    pub async fn send(&self, id: &str, email: &Email) -> anyhow::Result<()> {
        let from = match self {
            Self::Smtp(_, from) | Self::Outbox(_, from) => from.clone(),
        };
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|e| anyhow::anyhow!("recipient is not an address: {e}"))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(&email.subject)
            .message_id(Some(format!("<{id}@jobgraph>")))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())?;
        match self {
            Self::Smtp(transport, _) => {
                transport.send(message).await?;
            }
            Self::Outbox(transport, _) => {
                transport.send(message).await?;
            }
        }
        Ok(())
    }
}

/// The welcome mail of a new user.
pub fn welcome(name: &str, email: &str, team: &str, invited: bool) -> Email {
    let body = if invited {
        format!(
            "Hello {name},\n\nyou have been added to the team \"{team}\" on jobgraph.\n\
             Ask your admin for a password, then sign in with {email}.\n\n— jobgraph\n"
        )
    } else {
        format!(
            "Hello {name},\n\nwelcome to jobgraph! Your team \"{team}\" is ready.\n\n— jobgraph\n"
        )
    };
    Email {
        to: email.to_owned(),
        subject: if invited {
            format!("You have been added to {team}")
        } else {
            "Welcome to jobgraph".to_owned()
        },
        body,
    }
}

/// The notification that a resume is ready.
pub fn resume_ready(name: &str, email: &str, title: &str, company: &str) -> Email {
    Email {
        to: email.to_owned(),
        subject: format!("Your resume for {title} at {company} is ready"),
        body: format!(
            "Hello {name},\n\nthe resume you asked for ({title} at {company}) is ready in jobgraph.\n\n— jobgraph\n"
        ),
    }
}
