use async_graphql::{Context, ID, Object};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::{auth::unique_email, not_yours};
use crate::{
    auth::Viewer,
    cache::Dep,
    db::{
        self,
        activity::Entry,
        entities::user,
        users::{NewUser, UserChanges},
    },
    email,
    error::{AppError, AppResult, ErrorCode},
    graphql::{
        context::ContextExt,
        ids::{self, Kind},
        inputs::{Checker, CreateUserInput, UpdateUserInput, person_name},
        types::User,
    },
    tasks,
};

#[derive(Default)]
pub struct UserMutation;

/// Loads a user of the caller's team for writing, or explains why not.
async fn user_for_write(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: i64,
) -> AppResult<user::Model> {
    match db::users::find(db, viewer.team_id, id).await? {
        Some(user) => Ok(user),
        None => Err(not_yours(
            "user",
            db::users::find_any(db, id).await?.map(|u| u.team_id),
        )),
    }
}

/// Refuses a change that would leave the team without an active admin.
/// The team's row is locked first (PostgreSQL; SQLite serialises writers),
/// so two admins demoting each other at once cannot both succeed.
async fn keep_an_admin(
    db: &impl ConnectionTrait,
    target: &user::Model,
    still_admin: bool,
) -> AppResult<()> {
    let is_active_admin = target.is_active && target.role.is_admin();
    if !is_active_admin || still_admin {
        return Ok(());
    }
    db::teams::lock(db, target.team_id).await?;
    if db::users::count_active_admins(db, target.team_id).await? <= 1 {
        return Err(AppError::bad_input(
            "a team must keep at least one active admin",
        ));
    }
    Ok(())
}

/// Changing one's own password or e-mail needs the current password (a
/// stolen session alone cannot take the account over). Attempts count
/// against the account's sign-in limit.
async fn confirm_current_password(
    ctx: &Context<'_>,
    user_id: i64,
    current: Option<String>,
) -> AppResult<()> {
    let services = ctx.services()?;
    let Some(current) = current else {
        return Err(AppError::invalid(
            "input.currentPassword",
            "is required to change your own password or e-mail",
        ));
    };
    let me = db::users::find_any(ctx.db()?, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("no such user"))?;
    services
        .throttle
        .hit(
            "login-email",
            &me.email,
            services.config.abuse.login_per_email,
        )
        .await
        .map_err(|e| {
            AppError::limited(
                ErrorCode::RateLimited,
                "too many attempts: wait before trying again",
                e.retry_after,
            )
        })?;
    if services
        .auth
        .passwords()
        .verify(current, me.password_hash)
        .await?
    {
        Ok(())
    } else {
        Err(AppError::invalid(
            "input.currentPassword",
            "is not your current password",
        ))
    }
}

#[Object]
impl UserMutation {
    /// Adds a user to the caller's team (ADMIN only).
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> AppResult<User> {
        let viewer = ctx.viewer()?;
        viewer.require_admin()?;
        let mut check = Checker::new("input");
        let name = person_name(&mut check, &input.name);
        let email = check.email("email", &input.email);
        if let Some(p) = &input.password {
            check.password("password", p);
        }
        check.finish(())?;
        let db = ctx.db()?;
        if db::users::email_taken(db, &email).await? {
            return Err(AppError::invalid("input.email", "is already registered"));
        }
        let password_hash = match input.password {
            Some(p) => Some(ctx.services()?.auth.passwords().hash(p).await?),
            None => None,
        };
        let writer = &ctx.services()?.writer;
        let mut uow = writer.begin(db).await?;
        let user = db::users::insert(
            uow.db(),
            NewUser {
                team_id: viewer.team_id,
                email,
                name,
                role: input.role,
                password_hash,
            },
        )
        .await
        .map_err(|e| unique_email(e, "input.email"))?;
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "user.created",
                format!("added {} to the team", user.name),
            )
            .with_metadata(json!({ "userId": user.id, "role": user.role })),
        );
        let team = db::teams::find(uow.db(), viewer.team_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let welcome = email::welcome(&user.name, &user.email, &team, true);
        uow.enqueue(tasks::email(writer.tasks(), viewer.team_id, &welcome));
        uow.touch(viewer.team_id, &[Dep::Users]);
        uow.commit()
            .await
            .map_err(|e| unique_email(e, "input.email"))?;
        Ok(User(user))
    }

    /// Changes a user. Anyone may change their own name, e-mail and password
    /// (the last two need `currentPassword`); an admin may change anyone in
    /// the team, including role and active flag. A new password, role or a
    /// deactivation revokes the user's earlier tokens.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateUserInput,
    ) -> AppResult<User> {
        let viewer = ctx.viewer()?;
        let id = ids::decode(Kind::User, &id, "id")?;
        if id != viewer.user_id || input.role.is_some() || input.is_active.is_some() {
            viewer.require_admin()?;
        }
        let mut check = Checker::new("input");
        let name = input.name.as_deref().map(|n| person_name(&mut check, n));
        let email = input.email.as_deref().map(|e| check.email("email", e));
        if let Some(p) = &input.password {
            check.password("password", p);
        }
        if input.name.is_none()
            && input.email.is_none()
            && input.role.is_none()
            && input.password.is_none()
            && input.is_active.is_none()
        {
            check.fail("*", "give at least one field to change");
        }
        check.finish(())?;
        let services = ctx.services()?;
        if id == viewer.user_id && (input.password.is_some() || input.email.is_some()) {
            confirm_current_password(ctx, viewer.user_id, input.current_password).await?;
        }
        let password_hash = match input.password {
            Some(p) => Some(services.auth.passwords().hash(p).await?),
            None => None,
        };
        let mut uow = services.writer.begin(ctx.db()?).await?;
        let target = user_for_write(uow.db(), &viewer, id).await?;
        if let Some(email) = &email
            && *email != target.email
            && db::users::email_taken(uow.db(), email).await?
        {
            return Err(AppError::invalid("input.email", "is already registered"));
        }
        let still_admin = input.role.map_or(target.role.is_admin(), |r| r.is_admin())
            && input.is_active.unwrap_or(target.is_active);
        keep_an_admin(uow.db(), &target, still_admin).await?;
        let changed: Vec<&str> = [
            ("name", name.is_some()),
            ("email", email.is_some()),
            ("role", input.role.is_some()),
            ("password", password_hash.is_some()),
            ("isActive", input.is_active.is_some()),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        let changes = UserChanges {
            name,
            email,
            role: input.role,
            password_hash,
            is_active: input.is_active,
        };
        let updated = db::users::update(uow.db(), target, changes)
            .await
            .map_err(|e| unique_email(e, "input.email"))?;
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "user.updated",
                format!("updated {}", updated.name),
            )
            .with_metadata(json!({ "userId": updated.id, "fields": changed })),
        );
        uow.touch(viewer.team_id, &[Dep::Users]);
        uow.commit()
            .await
            .map_err(|e| unique_email(e, "input.email"))?;
        ctx.services()?.auth.forget(updated.id).await;
        Ok(User(updated))
    }

    /// Switches a user off: their tokens stop working at once (ADMIN only).
    async fn deactivate_user(&self, ctx: &Context<'_>, id: ID) -> AppResult<User> {
        let viewer = ctx.viewer()?;
        viewer.require_admin()?;
        let id = ids::decode(Kind::User, &id, "id")?;
        let mut uow = ctx.services()?.writer.begin(ctx.db()?).await?;
        let target = user_for_write(uow.db(), &viewer, id).await?;
        keep_an_admin(uow.db(), &target, false).await?;
        let updated = db::users::update(
            uow.db(),
            target,
            UserChanges {
                is_active: Some(false),
                ..Default::default()
            },
        )
        .await?;
        uow.log(
            Entry::info(
                viewer.team_id,
                viewer.user_id,
                "user.deactivated",
                format!("deactivated {}", updated.name),
            )
            .with_metadata(json!({ "userId": updated.id })),
        );
        uow.touch(viewer.team_id, &[Dep::Users]);
        uow.commit().await?;
        ctx.services()?.auth.forget(updated.id).await;
        Ok(User(updated))
    }
}
