//! Team queries and writes.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

use super::entities::team::{ActiveModel, Entity as Teams, Model};

/// One team by id.
pub async fn find(db: &impl ConnectionTrait, id: i64) -> Result<Option<Model>, DbErr> {
    Teams::find_by_id(id).one(db).await
}

/// Turns a team name into a URL-safe slug (`"Acme Inc."` → `acme-inc`).
pub fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = slug.chars().take(80).collect();
    if slug.is_empty() {
        "team".to_owned()
    } else {
        slug
    }
}

/// Whether a slug is in use.
pub async fn slug_taken(db: &impl ConnectionTrait, slug: &str) -> Result<bool, DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    let found = Teams::find()
        .filter(super::entities::team::Column::Slug.eq(slug))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Inserts a team under `slug`; the caller makes the slug unique.
pub async fn insert(db: &impl ConnectionTrait, name: &str, slug: &str) -> Result<Model, DbErr> {
    ActiveModel {
        name: Set(name.to_owned()),
        slug: Set(slug.to_owned()),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Locks a team's row until the transaction ends (PostgreSQL; SQLite's
/// write transactions already exclude each other): changes that must see
/// every concurrent change of the team's admins take it first.
pub async fn lock(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT id FROM teams WHERE id = $1 FOR UPDATE",
            [id.into()],
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slugify;

    #[test]
    fn slugs_are_lower_case_words_joined_by_dashes() {
        assert_eq!(slugify("Acme Inc."), "acme-inc");
        assert_eq!(slugify("  Ünïcode  Team!! "), "n-code-team");
        assert_eq!(slugify("???"), "team");
    }
}
