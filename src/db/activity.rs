//! The activity log: every change records what it did, in its own
//! transaction (through the unit of work), so no committed change is ever
//! missing from the log.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use serde_json::Value as Json;

use super::{
    entities::log::{ActiveModel, Entity as Logs},
    enums::LogLevel,
};

/// One log entry to write.
#[derive(Debug, Clone)]
pub struct Entry {
    pub team_id: Option<i64>,
    pub user_id: Option<i64>,
    pub action: &'static str,
    pub level: LogLevel,
    pub message: String,
    pub metadata: Option<Json>,
}

impl Entry {
    /// An `info` entry by `user_id` in `team_id`.
    pub fn info(
        team_id: i64,
        user_id: i64,
        action: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            team_id: Some(team_id),
            user_id: Some(user_id),
            action,
            level: LogLevel::Info,
            message: message.into(),
            metadata: None,
        }
    }

    pub fn with_metadata(mut self, metadata: Json) -> Self {
        self.metadata = Some(metadata);
        self
    }

    fn into_active(self, now: DateTime<Utc>) -> ActiveModel {
        ActiveModel {
            team_id: Set(self.team_id),
            user_id: Set(self.user_id),
            action: Set(self.action.to_owned()),
            level: Set(self.level),
            message: Set(self.message),
            metadata: Set(self.metadata),
            created_at: Set(now),
            ..Default::default()
        }
    }
}

/// Writes a unit of work's entries in one statement; pass its transaction.
pub async fn record_all(db: &impl ConnectionTrait, entries: Vec<Entry>) -> Result<(), DbErr> {
    if entries.is_empty() {
        return Ok(());
    }
    let now = super::now();
    Logs::insert_many(entries.into_iter().map(|e| e.into_active(now)))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Writes many entries, each at its own time, with chunked multi-row
/// inserts (seeding history).
pub async fn record_many_at(
    db: &impl ConnectionTrait,
    entries: Vec<(Entry, DateTime<Utc>)>,
) -> Result<(), DbErr> {
    // 8 columns per row: 1000 rows stay far under every bind limit.
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<ActiveModel> = entries
            .by_ref()
            .take(1000)
            .map(|(e, at)| e.into_active(at))
            .collect();
        Logs::insert_many(chunk).exec_without_returning(db).await?;
    }
    Ok(())
}
