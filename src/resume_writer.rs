//! Writes a resume for a job: through any OpenAI-compatible chat-completions
//! API when `OPENAI_API_KEY` is set, otherwise with a deterministic local
//! template. The API client is async (reqwest) with a request timeout; a
//! 429 or 5xx answer is a retryable failure that carries the server's
//! `Retry-After`, and the task queue schedules the retry. The key is sent
//! only in the `Authorization` header and never logged.

use std::time::Duration;

use serde_json::json;
use tracing::Instrument;

use crate::{config::ModelSettings, secret::Secret};

/// What the resume is written from.
#[derive(Debug, Clone)]
pub struct ResumeInput {
    pub name: String,
    pub email: String,
    pub team: String,
    pub title: String,
    pub company: String,
    pub location: Option<String>,
    pub description: Option<String>,
    pub salary: Option<(Option<i64>, Option<i64>)>,
    /// Titles of other jobs the user tracks: a hint of their direction.
    pub other_titles: Vec<String>,
}

/// A written resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub content: String,
    pub model: String,
}

/// Why writing failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Worth another attempt (rate limit, server error, timeout).
    #[error("{message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    /// Will fail the same way again (bad key, bad request).
    #[error("{0}")]
    Permanent(String),
}

/// The local writer's model name.
pub const LOCAL_MODEL: &str = "local-template-v1";

/// Writes resumes.
#[derive(Clone)]
pub enum ResumeWriter {
    OpenAi {
        client: reqwest::Client,
        url: String,
        key: Secret,
        model: String,
    },
    Local,
}

impl ResumeWriter {
    pub fn new(settings: &ModelSettings) -> anyhow::Result<Self> {
        let Some(key) = settings.api_key.clone() else {
            return Ok(Self::Local);
        };
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Self::OpenAi {
            client,
            url: format!(
                "{}/chat/completions",
                settings.base_url.trim_end_matches('/')
            ),
            key,
            model: settings.model.clone(),
        })
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Self::OpenAi { .. } => "chat-completions API",
            Self::Local => "local template",
        }
    }

    pub async fn write(&self, input: &ResumeInput) -> Result<Written, WriteError> {
        match self {
            Self::Local => Ok(Written {
                content: local_resume(input),
                model: LOCAL_MODEL.to_owned(),
            }),
            Self::OpenAi {
                client,
                url,
                key,
                model,
            } => chat(client, url, key, model, input).await,
        }
    }
}

fn prompt(input: &ResumeInput) -> String {
    let mut p = format!(
        "Write a one-page plain-text resume (no markdown) for {} <{}>, a member of the team \"{}\", \
         tailored to this job.\n\nJob: {} at {}\n",
        input.name, input.email, input.team, input.title, input.company
    );
    if let Some(location) = &input.location {
        p.push_str(&format!("Location: {location}\n"));
    }
    if let Some((min, max)) = input.salary {
        p.push_str(&format!(
            "Salary range: {} – {}\n",
            fmt_money(min),
            fmt_money(max)
        ));
    }
    if let Some(description) = &input.description {
        p.push_str(&format!("Description:\n{description}\n"));
    }
    if !input.other_titles.is_empty() {
        p.push_str(&format!(
            "The candidate also tracks roles such as: {}.\n",
            input.other_titles.join(", ")
        ));
    }
    p.push_str(
        "Do not invent employers, degrees or dates; use clearly marked placeholders instead.",
    );
    p
}

/// One call of the chat-completions API, in a client span whose context
/// goes along as `traceparent` (the model API's own traces join ours).
async fn chat(
    client: &reqwest::Client,
    url: &str,
    key: &Secret,
    model: &str,
    input: &ResumeInput,
) -> Result<Written, WriteError> {
    let span = tracing::debug_span!(
        "model.request",
        otel.name = "POST chat/completions",
        otel.kind = "client",
        gen_ai.request.model = model,
    );
    chat_in_span(client, url, key, model, input)
        .instrument(span)
        .await
}

async fn chat_in_span(
    client: &reqwest::Client,
    url: &str,
    key: &Secret,
    model: &str,
    input: &ResumeInput,
) -> Result<Written, WriteError> {
    let mut trace = reqwest::header::HeaderMap::new();
    crate::telemetry::inject(&mut trace);
    let body = json!({
        "model": model,
        "messages": [
            { "role": "system", "content": "You write concise, truthful resumes tailored to a job." },
            { "role": "user", "content": prompt(input) },
        ],
        "temperature": 0.4,
    });
    let response = client
        .post(url)
        .headers(trace)
        .bearer_auth(key.expose())
        .json(&body)
        .send()
        .await
        .map_err(|e| WriteError::Retryable {
            message: if e.is_timeout() {
                "the model API did not answer in time".to_owned()
            } else {
                format!("the model API is unreachable: {}", e.without_url())
            },
            retry_after: None,
        })?;
    let status = response.status();
    if status.as_u16() == 429 || status.is_server_error() {
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        return Err(WriteError::Retryable {
            message: format!("the model API answered {status}"),
            retry_after,
        });
    }
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let snippet: String = text.chars().take(200).collect();
        return Err(WriteError::Permanent(format!(
            "the model API refused the request ({status}): {snippet}"
        )));
    }
    let value: serde_json::Value = response.json().await.map_err(|e| WriteError::Retryable {
        message: format!(
            "the model API sent an unreadable answer: {}",
            e.without_url()
        ),
        retry_after: None,
    })?;
    let content = value["choices"][0]["message"]["content"]
        .as_str()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            WriteError::Permanent("the model API answered without any text".to_owned())
        })?;
    Ok(Written {
        content: content.to_owned(),
        model: value["model"].as_str().unwrap_or(model).to_owned(),
    })
}

/// `Retry-After` in seconds or as an HTTP date; bounded to an hour.
fn parse_retry_after(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let secs = match raw.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(raw).ok()?;
            (at.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64
        }
    };
    Some(Duration::from_secs(secs.min(3600)))
}

fn fmt_money(v: Option<i64>) -> String {
    v.map_or_else(|| "?".to_owned(), |v| format!("{v}"))
}

/// Words in a job that name skills worth listing.
const SKILLS: &[&str] = &[
    "rust",
    "go",
    "python",
    "java",
    "typescript",
    "javascript",
    "sql",
    "postgresql",
    "redis",
    "graphql",
    "kubernetes",
    "docker",
    "aws",
    "gcp",
    "linux",
    "react",
    "kafka",
    "terraform",
    "security",
    "data",
    "distributed",
    "api",
    "backend",
    "frontend",
    "platform",
    "reliability",
    "management",
];

/// A deterministic, useful plain-text resume from the same inputs the
/// model would get.
pub fn local_resume(input: &ResumeInput) -> String {
    let haystack = format!(
        "{} {} {}",
        input.title,
        input.description.as_deref().unwrap_or(""),
        input.other_titles.join(" ")
    )
    .to_lowercase();
    let words: Vec<&str> = haystack.split(|c: char| !c.is_alphanumeric()).collect();
    let mut skills: Vec<&str> = SKILLS
        .iter()
        .copied()
        .filter(|s| words.contains(s))
        .collect();
    if skills.is_empty() {
        skills = vec!["communication", "problem solving", "collaboration"];
    }
    let mut out = String::new();
    out.push_str(&format!(
        "{}\n{}\n\n",
        input.name.to_uppercase(),
        input.email
    ));
    out.push_str(&format!(
        "TARGET ROLE\n{} at {}",
        input.title, input.company
    ));
    if let Some(location) = &input.location {
        out.push_str(&format!(" ({location})"));
    }
    out.push_str("\n\nSUMMARY\n");
    out.push_str(&format!(
        "{} is applying for the {} role at {}, bringing experience in {}.\n",
        input.name,
        input.title,
        input.company,
        skills.join(", ")
    ));
    out.push_str("\nKEY SKILLS\n");
    for skill in &skills {
        out.push_str(&format!("- {skill}\n"));
    }
    if !input.other_titles.is_empty() {
        out.push_str("\nRELATED ROLES CONSIDERED\n");
        for title in &input.other_titles {
            out.push_str(&format!("- {title}\n"));
        }
    }
    out.push_str("\nEXPERIENCE\n- [Employer], [Role], [Dates]: [achievement relevant to ");
    out.push_str(&input.title);
    out.push_str("]\n\nEDUCATION\n- [Degree], [Institution], [Year]\n");
    out.push_str(&format!("\nTeam: {}\n", input.team));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> ResumeInput {
        ResumeInput {
            name: "Ada Lovelace".into(),
            email: "ada@example.com".into(),
            team: "Analytical".into(),
            title: "Senior Rust Engineer".into(),
            company: "Initech".into(),
            location: Some("Remote".into()),
            description: Some("Build GraphQL APIs on PostgreSQL and Redis.".into()),
            salary: Some((Some(100), Some(200))),
            other_titles: vec!["Backend Engineer".into()],
        }
    }

    #[test]
    fn the_local_writer_is_deterministic_and_uses_the_job() {
        let a = local_resume(&input());
        assert_eq!(a, local_resume(&input()));
        for needle in [
            "ADA LOVELACE",
            "Senior Rust Engineer at Initech",
            "- rust",
            "- graphql",
            "- postgresql",
            "Backend Engineer",
        ] {
            assert!(a.contains(needle), "missing {needle} in\n{a}");
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("99999"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2001 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_prompt_carries_the_job_and_the_user() {
        let p = prompt(&input());
        assert!(p.contains("Senior Rust Engineer at Initech") && p.contains("Ada Lovelace"));
    }
}
