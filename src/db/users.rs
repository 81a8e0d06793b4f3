//! User queries and writes, scoped to the caller's team except for the
//! login and sign-up lookups by e-mail, which are global by nature.

use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    QueryTrait, Select,
    sea_query::{Expr, ExprTrait},
};

use super::{
    entities::user::{ActiveModel, Column, Entity as Users, Model},
    enums::Role,
    keyset::{self, Keyed, Page, PageRequest, Rows, SortKey, SortValue},
};

impl Keyed for Model {
    fn id(&self) -> i64 {
        self.id
    }

    fn sort_value(&self, _key: SortKey) -> SortValue {
        SortValue::Time(self.created_at)
    }
}

/// Validated `UserFilter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub is_active: Option<bool>,
    pub search: Option<String>,
}

fn filtered(team_id: i64, filter: &UserFilter) -> Select<Users> {
    Users::find()
        .filter(Column::TeamId.eq(team_id))
        .apply_if(filter.is_active, |q, a| q.filter(Column::IsActive.eq(a)))
        .apply_if(filter.search.as_deref(), |q, term| {
            q.filter(keyset::search_condition(
                &[Column::Name, Column::Email],
                term,
            ))
        })
}

/// One user of the team.
pub async fn find(
    db: &impl ConnectionTrait,
    team_id: i64,
    id: i64,
) -> Result<Option<Model>, DbErr> {
    Users::find_by_id(id)
        .filter(Column::TeamId.eq(team_id))
        .one(db)
        .await
}

/// A user by id, whatever the team (authentication only).
pub async fn find_any(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Users::find_by_id(id).one(db).await
}

/// A user by e-mail, whatever the team (login and uniqueness checks).
pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<Model>, DbErr> {
    Users::find()
        .filter(Column::Email.eq(email.to_lowercase()))
        .one(db)
        .await
}

/// Users by id in one statement, restricted to the team.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    team_id: i64,
    ids: &[i64],
) -> Result<Vec<Model>, DbErr> {
    Users::find()
        .filter(Column::TeamId.eq(team_id))
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// One keyset page of the team's users, newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<Page<Model>, DbErr> {
    keyset::fetch_page(
        db,
        Rows::of_parent_or(
            Column::TeamId,
            team_id,
            (*filter != UserFilter::default()).then(|| filtered(team_id, filter)),
        ),
        Column::CreatedAt,
        Column::Id,
        page,
    )
    .await
}

/// How many of the team's users match.
pub async fn count(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &UserFilter,
) -> Result<u64, DbErr> {
    keyset::count(db, filtered(team_id, filter)).await
}

/// The first page of members of each team (only ever the caller's).
pub async fn pages_by_team(
    db: &impl ConnectionTrait,
    team_id: i64,
    filter: &UserFilter,
    page: &PageRequest,
) -> Result<HashMap<i64, Page<Model>>, DbErr> {
    keyset::fetch_pages_by_parent(
        db,
        filtered(team_id, filter),
        Column::TeamId,
        &[team_id],
        |u| Some(u.team_id),
        Column::CreatedAt,
        Column::Id,
        page,
    )
    .await
}

/// A user to insert; validated by the caller.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub team_id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password_hash: Option<String>,
}

/// Inserts one user.
pub async fn insert(db: &impl ConnectionTrait, user: NewUser) -> Result<Model, DbErr> {
    let now = super::now();
    ActiveModel {
        team_id: Set(user.team_id),
        email: Set(user.email.to_lowercase()),
        name: Set(user.name),
        role: Set(user.role),
        password_hash: Set(user.password_hash),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Changes to one user; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub is_active: Option<bool>,
}

/// Applies `changes` and bumps `updated_at`. A new password, a new role or
/// a deactivation also bumps the token version: every token issued before
/// is refused from then on.
pub async fn update(
    db: &impl ConnectionTrait,
    user: Model,
    changes: UserChanges,
) -> Result<Model, DbErr> {
    let revokes = changes.password_hash.is_some()
        || changes.role.is_some_and(|r| r != user.role)
        || (changes.is_active == Some(false) && user.is_active);
    let id = user.id;
    let mut active = user.into_active_model();
    if let Some(v) = changes.name {
        active.name = Set(v);
    }
    if let Some(v) = changes.email {
        active.email = Set(v.to_lowercase());
    }
    if let Some(v) = changes.role {
        active.role = Set(v);
    }
    if let Some(v) = changes.password_hash {
        active.password_hash = Set(Some(v));
    }
    if let Some(v) = changes.is_active {
        active.is_active = Set(v);
    }
    active.updated_at = Set(super::now());
    let mut update = Users::update_many().set(active);
    if revokes {
        // Counted in SQL, not from the row read earlier: two changes at
        // once each move the version on, so no older token survives either.
        update = update.col_expr(Column::TokenVersion, Expr::col(Column::TokenVersion).add(1));
    }
    update
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?
        .pop()
        .ok_or_else(|| DbErr::RecordNotFound(format!("user {id}")))
}

/// Active admins of a team (a team must keep at least one).
pub async fn count_active_admins(db: &impl ConnectionTrait, team_id: i64) -> Result<u64, DbErr> {
    keyset::count(
        db,
        Users::find()
            .filter(Column::TeamId.eq(team_id))
            .filter(Column::Role.eq(Role::Admin))
            .filter(Column::IsActive.eq(true)),
    )
    .await
}

/// Whether an e-mail is taken, by anyone.
pub async fn email_taken(db: &impl ConnectionTrait, email: &str) -> Result<bool, DbErr> {
    let n = keyset::count(
        db,
        Users::find()
            .filter(Column::Email.eq(email.to_lowercase()))
            .select_only()
            .column(Column::Id),
    )
    .await?;
    Ok(n > 0)
}
