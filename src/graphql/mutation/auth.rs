use async_graphql::{Context, Object};
use serde_json::json;

use crate::{
    auth::Viewer,
    cache::Dep,
    config::Limit,
    db::{self, activity::Entry, enums::Role, users::NewUser},
    email,
    error::{AppError, AppResult, ErrorCode},
    graphql::{
        context::{ContextExt, Session},
        inputs::{Checker, SignupInput, person_name, team_name},
        types::{AuthPayload, User},
    },
    tasks,
    throttle::address_key,
};

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Creates a team and its first ADMIN, and signs them in.
    async fn signup(&self, ctx: &Context<'_>, input: SignupInput) -> AppResult<AuthPayload> {
        let services = ctx.services()?;
        let mut check = Checker::new("input");
        let team = team_name(&mut check, &input.team_name);
        let name = person_name(&mut check, &input.name);
        let email = check.email("email", &input.email);
        check.password("password", &input.password);
        check.finish(())?;
        // Counted before the e-mail is looked up: "is already registered"
        // cannot be probed faster than sign-ups are allowed.
        if let Some(addr) = ctx.client_addr() {
            limit(
                ctx,
                "signup-address",
                &address_key(addr),
                services.config.abuse.signup_per_address,
            )
            .await?;
        }
        if db::users::email_taken(&services.db, &email).await? {
            return Err(AppError::invalid("input.email", "is already registered"));
        }
        let hash = services.auth.passwords().hash(input.password).await?;

        let mut uow = services.writer.begin(&services.db).await?;
        let base = db::teams::slugify(&team);
        let mut slug = base.clone();
        let mut n = 1;
        while db::teams::slug_taken(uow.db(), &slug).await? {
            n += 1;
            slug = if n <= 10 {
                format!("{base}-{n}")
            } else {
                format!("{base}-{:08x}", rand::random::<u32>())
            };
        }
        let team = db::teams::insert(uow.db(), &team, &slug).await?;
        let user = db::users::insert(
            uow.db(),
            NewUser {
                team_id: team.id,
                email,
                name,
                role: Role::Admin,
                password_hash: Some(hash),
            },
        )
        .await
        .map_err(|e| unique_email(e, "input.email"))?;
        uow.log(
            Entry::info(
                team.id,
                user.id,
                "team.created",
                format!("{} created team {}", user.name, team.name),
            )
            .with_metadata(json!({ "teamId": team.id, "slug": team.slug })),
        );
        let welcome = email::welcome(&user.name, &user.email, &team.name, false);
        uow.enqueue(tasks::email(services.writer.tasks(), team.id, &welcome));
        uow.touch(team.id, &[Dep::Users]);
        uow.commit()
            .await
            .map_err(|e| unique_email(e, "input.email"))?;
        signed_in(ctx, user)
    }

    /// Exchanges an e-mail and password for a token. Limited per account
    /// and per client address; a refused attempt costs the same time and
    /// writes the same log entry whether or not the account exists.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        #[graphql(secret)] password: String,
    ) -> AppResult<AuthPayload> {
        let services = ctx.services()?;
        let refused = || AppError::Unauthenticated("invalid e-mail or password".into());
        // NUL never matches a stored e-mail, and PostgreSQL refuses it in text.
        if email.len() > 254 || password.len() > 1024 || email.contains('\0') {
            return Err(refused());
        }
        let email = email.trim().to_lowercase();
        let abuse = &services.config.abuse;
        if let Some(addr) = ctx.client_addr() {
            limit(
                ctx,
                "login-address",
                &address_key(addr),
                abuse.login_per_address,
            )
            .await?;
        }
        limit(ctx, "login-email", &email, abuse.login_per_email).await?;
        let user = db::users::find_by_email(&services.db, &email).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let ok = services.auth.passwords().verify(password, stored).await?;
        let mut uow = services.writer.begin(&services.db).await?;
        match user {
            Some(user) if ok && user.is_active => {
                uow.log(Entry::info(
                    user.team_id,
                    user.id,
                    "user.logged_in",
                    format!("{} signed in", user.name),
                ));
                uow.commit().await?;
                signed_in(ctx, user)
            }
            other => {
                uow.log(Entry {
                    team_id: other.as_ref().map(|u| u.team_id),
                    user_id: other.as_ref().map(|u| u.id),
                    action: "user.login_failed",
                    level: db::enums::LogLevel::Warning,
                    message: "a sign-in attempt was refused".to_owned(),
                    metadata: None,
                });
                // Not waiting for the cache: the answer must take the same
                // time whether or not the account exists.
                uow.commit_detached().await?;
                Err(refused())
            }
        }
    }
}

/// Counts an attempt against a rate limit (429 with `Retry-After` past it).
async fn limit(ctx: &Context<'_>, what: &str, who: &str, limit: Limit) -> AppResult<()> {
    ctx.services()?
        .throttle
        .hit(what, who, limit)
        .await
        .map_err(|e| {
            AppError::limited(
                ErrorCode::RateLimited,
                "too many attempts: wait before trying again",
                e.retry_after,
            )
        })
}

/// Issues the token and lets the rest of this request read as the new user.
fn signed_in(ctx: &Context<'_>, user: db::entities::user::Model) -> AppResult<AuthPayload> {
    let token = ctx.services()?.auth.issue(&user)?;
    if let Some(session) = ctx.data_opt::<Session>() {
        session.sign_in(Viewer {
            user_id: user.id,
            team_id: user.team_id,
            role: user.role,
        });
    }
    Ok(AuthPayload {
        token,
        user: User(user),
    })
}

/// A unique-constraint failure on `users.email` is the client's problem
/// (two sign-ups raced), not an internal error.
pub(crate) fn unique_email(err: sea_orm::DbErr, field: &str) -> AppError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            AppError::invalid(field, "is already registered")
        }
        _ => err.into(),
    }
}
