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
    let select = Resumes::find().filter(Column::JobId.is_in(job_ids.iter().copied()));
    let pages = keyset::fetch_pages_by_parent(
        db,
        select,
        Column::JobId,
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
