//! The root `Mutation` type, one module per area. Every mutation checks the
//! caller's role, validates all input before writing, and writes its change
//! and its activity-log entry in one transaction.

mod auth;
mod jobs;
mod resumes;
mod users;

use async_graphql::MergedObject;

use crate::{
    db,
    error::{AppError, AppResult},
};

#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    jobs::JobMutation,
    users::UserMutation,
    resumes::ResumeMutation,
);

/// The error for a write to a row that is not the caller's team's: FORBIDDEN
/// when it exists in another team, NOT_FOUND when it does not exist at all.
pub(crate) fn not_yours(what: &str, owner_team: Option<i64>) -> AppError {
    match owner_team {
        Some(_) => AppError::forbidden(format!("this {what} belongs to another team")),
        None => AppError::not_found(format!("no such {what}")),
    }
}

/// Loads a job of the caller's team for writing, or explains why not.
pub(crate) async fn job_for_write(
    db: &impl sea_orm::ConnectionTrait,
    team_id: i64,
    id: i64,
) -> AppResult<db::entities::job::Model> {
    match db::jobs::find(db, team_id, id).await? {
        Some(job) => Ok(job),
        None => Err(not_yours("job", db::jobs::team_of(db, id).await?)),
    }
}
