//! Resume queries and writes. Resumes belong to a team through their job.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Query},
};

use super::{
    entities::{
        job,
        resume::{ActiveModel, Column, Entity as Resumes, Model},
    },
    enums::ResumeStatus,
    keyset::{self, Keyed, PageRequest, Sort, SortKey, SortValue},
};

/// Resumes listed under one job, newest first, at most this many.
pub const RESUMES_PER_JOB: u64 = 100;

impl Keyed for Model {
    fn id(&self) -> i64 {
        self.id
    }

    fn sort_value(&self, _key: SortKey) -> SortValue {
        SortValue::Time(self.created_at)
    }
}

/// `job_id IN (SELECT id FROM jobs WHERE team_id = ?)`
fn in_team(team_id: i64) -> sea_orm::sea_query::Expr {
    Expr::col(Column::JobId).in_subquery(
        Query::select()
            .column(job::Column::Id)
            .from(job::Entity)
            .and_where(Expr::col(job::Column::TeamId).eq(team_id))
            .to_owned(),
    )
}

/// One resume of the team.
pub async fn find(
    db: &impl ConnectionTrait,
    team_id: i64,
    id: i64,
) -> Result<Option<Model>, DbErr> {
    Resumes::find_by_id(id)
        .filter(in_team(team_id))
        .one(db)
        .await
}

/// The newest resumes of each job, in one statement. Callers pass only job ids
/// they already resolved inside the team.
pub async fn by_jobs(
    db: &impl ConnectionTrait,
    job_ids: &[i64],
) -> Result<HashMap<i64, Vec<Model>>, DbErr> {
    let pages = keyset::fetch_pages_by_parent(
        db,
        Resumes::find(),
        Column::JobId,
        job_ids,
        |r| Some(r.job_id),
        Column::CreatedAt,
        Column::Id,
        &PageRequest::first(Sort::NEWEST_FIRST, RESUMES_PER_JOB, None),
    )
    .await?;
    Ok(pages.into_iter().map(|(k, p)| (k, p.items)).collect())
}

/// Inserts a PENDING resume for a job.
pub async fn insert_pending(
    db: &impl ConnectionTrait,
    job_id: i64,
    user_id: i64,
) -> Result<Model, DbErr> {
    ActiveModel {
        job_id: Set(job_id),
        user_id: Set(user_id),
        status: Set(ResumeStatus::Pending),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// One resume, whatever the team (background work only).
pub async fn find_any(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Resumes::find_by_id(id).one(db).await
}

/// PENDING → GENERATING; false if it was not pending.
pub async fn set_generating(db: &impl ConnectionTrait, id: i64) -> Result<bool, DbErr> {
    let res = Resumes::update_many()
        .col_expr(Column::Status, ResumeStatus::Generating.into())
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(ResumeStatus::Pending))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// → READY with its text; false if it was already settled.
pub async fn set_ready(
    db: &impl ConnectionTrait,
    id: i64,
    content: &str,
    model: &str,
) -> Result<bool, DbErr> {
    let res = Resumes::update_many()
        .col_expr(Column::Status, ResumeStatus::Ready.into())
        .col_expr(Column::Content, Some(content.to_owned()).into())
        .col_expr(Column::Model, Some(model.to_owned()).into())
        .col_expr(Column::Error, Option::<String>::None.into())
        .col_expr(Column::CompletedAt, Some(super::now()).into())
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in([ResumeStatus::Pending, ResumeStatus::Generating]))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

/// → FAILED with a readable reason; false if it was already settled.
pub async fn set_failed(db: &impl ConnectionTrait, id: i64, error: &str) -> Result<bool, DbErr> {
    let res = Resumes::update_many()
        .col_expr(Column::Status, ResumeStatus::Failed.into())
        .col_expr(Column::Error, Some(error.to_owned()).into())
        .col_expr(Column::CompletedAt, Some(super::now()).into())
        .filter(Column::Id.eq(id))
        .filter(Column::Status.is_in([ResumeStatus::Pending, ResumeStatus::Generating]))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}
