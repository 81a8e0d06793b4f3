//! GraphQL input types and their validation into the database layer's
//! types. Every check names the offending field (`input[3].title`), and
//! every problem of an input is reported, not just the first.

use async_graphql::{Enum, ID, InputObject, MaybeUndefined};
use chrono::{DateTime, Utc};

use super::ids::{self, Kind};
use crate::{
    db::{
        enums::{JobStatus, LogLevel, Role},
        jobs::{JobChanges, JobFilter, NewJob},
        keyset::{Sort, SortKey},
        logs::LogFilter,
        users::UserFilter,
    },
    error::{AppError, AppResult, FieldError},
};

/// Collects field errors under a path prefix.
pub struct Checker {
    prefix: String,
    errors: Vec<FieldError>,
}

impl Checker {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            errors: Vec::new(),
        }
    }

    pub fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: format!("{}.{field}", self.prefix),
            message: message.into(),
        });
    }

    /// Trimmed text of `min..=max` characters, without NUL (PostgreSQL
    /// refuses it in text, which would surface as an internal error).
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if trimmed.contains('\0') {
            self.fail(field, "must not contain NUL characters");
        } else if len < min {
            self.fail(
                field,
                if min == 1 {
                    "must not be empty".to_owned()
                } else {
                    format!("must be at least {min} characters")
                },
            );
        } else if len > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
        trimmed.to_owned()
    }

    /// Optional text: empty after trimming means absent.
    pub fn optional_text(
        &mut self,
        field: &str,
        value: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        Some(self.text(field, value, 1, max))
    }

    /// A lower-cased bare e-mail address (`local@domain`): no display name,
    /// angle brackets, quotes, comments or spaces, so it can never smuggle a
    /// second recipient or a header into a mail.
    pub fn email(&mut self, field: &str, value: &str) -> String {
        let email = value.trim().to_lowercase();
        let local_ok = |local: &str| {
            !local.is_empty()
                && local.len() <= 64
                && !local.starts_with('.')
                && !local.ends_with('.')
                && !local.contains("..")
                && local
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c))
        };
        let domain_ok = |domain: &str| {
            domain.contains('.')
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        let valid = email.len() <= 254
            && match email.split_once('@') {
                Some((local, domain)) => local_ok(local) && domain_ok(domain),
                None => false,
            };
        if !valid {
            self.fail(field, "must be an e-mail address");
        }
        email
    }

    /// Passwords are 8 to 128 characters; nothing else is imposed.
    pub fn password(&mut self, field: &str, value: &str) {
        let len = value.chars().count();
        if len < 8 {
            self.fail(field, "must be at least 8 characters");
        } else if len > 128 {
            self.fail(field, "must be at most 128 characters");
        }
    }

    /// An absolute http(s) URL.
    pub fn url(&mut self, field: &str, value: Option<&str>) -> Option<String> {
        let url = value.map(str::trim).filter(|v| !v.is_empty())?;
        let lower = url.to_ascii_lowercase();
        if url.len() > 2048 {
            self.fail(field, "must be at most 2048 characters");
        } else if !(lower.starts_with("http://") || lower.starts_with("https://"))
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
            || url.len() <= "https://".len()
        {
            self.fail(field, "must be an http:// or https:// URL");
        }
        Some(url.to_owned())
    }

    pub fn salary(&mut self, field: &str, value: Option<i32>) -> Option<i64> {
        let v = value?;
        if v < 0 {
            self.fail(field, "must not be negative");
        }
        Some(v as i64)
    }

    pub fn salary_range(&mut self, min: Option<i64>, max: Option<i64>) {
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            self.fail("salaryMax", "must not be below salaryMin");
        }
    }

    pub fn take(&mut self) -> Vec<FieldError> {
        std::mem::take(&mut self.errors)
    }

    pub fn finish<T>(self, value: T) -> AppResult<T> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(AppError::Invalid(self.errors))
        }
    }
}

const TITLE_MAX: usize = 200;
const COMPANY_MAX: usize = 200;
const LOCATION_MAX: usize = 200;
/// The longest description, in characters (the answer-size bound uses it).
pub(crate) const DESCRIPTION_MAX: usize = 20_000;
const SEARCH_MAX: usize = 100;

/// A job to create. `title` and `company` are required; `status` defaults to SAVED.
#[derive(InputObject, Clone, Debug)]
pub struct CreateJobInput {
    pub title: String,
    pub company: String,
    pub location: Option<String>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub salary_min: Option<i32>,
    pub salary_max: Option<i32>,
    #[graphql(default_with = "JobStatus::Saved")]
    pub status: JobStatus,
}

impl CreateJobInput {
    /// Checks every field, recording problems in `check`.
    pub fn check(self, check: &mut Checker) -> NewJob {
        let salary_min = check.salary("salaryMin", self.salary_min);
        let salary_max = check.salary("salaryMax", self.salary_max);
        check.salary_range(salary_min, salary_max);
        NewJob {
            title: check.text("title", &self.title, 1, TITLE_MAX),
            company: check.text("company", &self.company, 1, COMPANY_MAX),
            location: check.optional_text("location", self.location.as_deref(), LOCATION_MAX),
            url: check.url("url", self.url.as_deref()),
            description: check.optional_text(
                "description",
                self.description.as_deref(),
                DESCRIPTION_MAX,
            ),
            salary_min,
            salary_max,
            status: self.status,
            created_at: None,
        }
    }
}

/// Changes to a job: absent fields stay, `null` clears an optional field.
#[derive(InputObject, Clone, Debug, Default)]
pub struct UpdateJobInput {
    pub title: Option<String>,
    pub company: Option<String>,
    pub location: MaybeUndefined<String>,
    pub url: MaybeUndefined<String>,
    pub description: MaybeUndefined<String>,
    pub salary_min: MaybeUndefined<i32>,
    pub salary_max: MaybeUndefined<i32>,
    pub status: Option<JobStatus>,
}

fn maybe<T, U>(value: MaybeUndefined<T>, f: impl FnOnce(T) -> Option<U>) -> Option<Option<U>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(f(v)),
    }
}

impl UpdateJobInput {
    /// Validates against the job's current salaries (the range must hold after the change).
    pub fn validate(
        self,
        current_min: Option<i64>,
        current_max: Option<i64>,
    ) -> AppResult<JobChanges> {
        let mut check = Checker::new("input");
        let changes = JobChanges {
            title: self.title.map(|t| check.text("title", &t, 1, TITLE_MAX)),
            company: self
                .company
                .map(|c| check.text("company", &c, 1, COMPANY_MAX)),
            location: maybe(self.location, |v| {
                check.optional_text("location", Some(&v), LOCATION_MAX)
            }),
            url: maybe(self.url, |v| check.url("url", Some(&v))),
            description: maybe(self.description, |v| {
                check.optional_text("description", Some(&v), DESCRIPTION_MAX)
            }),
            salary_min: maybe(self.salary_min, |v| check.salary("salaryMin", Some(v))),
            salary_max: maybe(self.salary_max, |v| check.salary("salaryMax", Some(v))),
            status: self.status,
        };
        let min = changes.salary_min.unwrap_or(current_min);
        let max = changes.salary_max.unwrap_or(current_max);
        check.salary_range(min, max);
        let nothing = changes.title.is_none()
            && changes.company.is_none()
            && changes.location.is_none()
            && changes.url.is_none()
            && changes.description.is_none()
            && changes.salary_min.is_none()
            && changes.salary_max.is_none()
            && changes.status.is_none();
        if nothing {
            check.fail("*", "give at least one field to change");
        }
        check.finish(changes)
    }
}

/// Narrows a job list. All conditions must hold.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "JobFilter")]
pub struct JobFilterInput {
    pub status: Option<JobStatus>,
    /// Any of these statuses.
    pub status_in: Option<Vec<JobStatus>>,
    /// Exact company name.
    pub company: Option<String>,
    /// Case-insensitive substring of the title or company.
    pub search: Option<String>,
    /// Created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
}

impl JobFilterInput {
    pub fn validate(self) -> AppResult<JobFilter> {
        let mut check = Checker::new("filter");
        if let Some(list) = &self.status_in
            && list.is_empty()
        {
            check.fail("statusIn", "must not be empty");
        }
        let mut status_in = self.status_in;
        if let Some(list) = status_in.as_mut() {
            list.sort_by_key(|s| *s as u8);
            list.dedup();
        }
        let filter = JobFilter {
            status: self.status,
            status_in,
            company: self
                .company
                .map(|c| check.text("company", &c, 1, COMPANY_MAX)),
            search: self
                .search
                .and_then(|s| check.optional_text("search", Some(&s), SEARCH_MAX)),
            created_after: self.created_after.map(crate::db::keyset::truncate_micros),
            created_before: self.created_before.map(crate::db::keyset::truncate_micros),
        };
        check.finish(filter)
    }
}

/// Column a job list is ordered by.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JobOrderField {
    #[default]
    CreatedAt,
    UpdatedAt,
    Company,
}

/// Sort direction.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderDirection {
    Asc,
    #[default]
    Desc,
}

/// Ordering of a job list (default: newest first).
#[derive(InputObject, Clone, Copy, Debug, Default)]
pub struct JobOrder {
    #[graphql(default)]
    pub field: JobOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl From<Option<JobOrder>> for Sort {
    fn from(order: Option<JobOrder>) -> Self {
        let order = order.unwrap_or_default();
        Sort {
            key: match order.field {
                JobOrderField::CreatedAt => SortKey::CreatedAt,
                JobOrderField::UpdatedAt => SortKey::UpdatedAt,
                JobOrderField::Company => SortKey::Company,
            },
            descending: order.direction == OrderDirection::Desc,
        }
    }
}

/// Narrows a user list.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "UserFilter")]
pub struct UserFilterInput {
    pub is_active: Option<bool>,
    /// Case-insensitive substring of the name or e-mail.
    pub search: Option<String>,
}

impl UserFilterInput {
    pub fn validate(self) -> AppResult<UserFilter> {
        let mut check = Checker::new("filter");
        let filter = UserFilter {
            is_active: self.is_active,
            search: self
                .search
                .and_then(|s| check.optional_text("search", Some(&s), SEARCH_MAX)),
        };
        check.finish(filter)
    }
}

/// Narrows the activity log.
#[derive(InputObject, Clone, Debug, Default)]
#[graphql(name = "LogFilter")]
pub struct LogFilterInput {
    pub level: Option<LogLevel>,
    /// Exact action, such as `job.created`.
    pub action: Option<String>,
    pub user_id: Option<ID>,
    /// At or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Strictly before this instant.
    pub until: Option<DateTime<Utc>>,
}

impl LogFilterInput {
    pub fn validate(self) -> AppResult<LogFilter> {
        let mut check = Checker::new("filter");
        let action = self.action.map(|a| check.text("action", &a, 1, 64));
        let mut errors = check.take();
        let user_id = match self
            .user_id
            .map(|id| ids::decode(Kind::User, &id, "filter.userId"))
            .transpose()
        {
            Ok(id) => id,
            Err(AppError::Invalid(mut e)) => {
                errors.append(&mut e);
                None
            }
            Err(other) => return Err(other),
        };
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        Ok(LogFilter {
            level: self.level,
            action,
            user_id,
            since: self.since.map(crate::db::keyset::truncate_micros),
            until: self.until.map(crate::db::keyset::truncate_micros),
        })
    }
}

/// A new team and its first admin.
#[derive(InputObject, Clone)]
pub struct SignupInput {
    pub team_name: String,
    pub name: String,
    pub email: String,
    #[graphql(secret)]
    pub password: String,
}

/// A new member of the caller's team (admins only).
#[derive(InputObject, Clone)]
pub struct CreateUserInput {
    pub name: String,
    pub email: String,
    #[graphql(default_with = "Role::Member")]
    pub role: Role,
    /// Without a password the user cannot log in until one is set.
    #[graphql(secret)]
    pub password: Option<String>,
}

/// Changes to a user. Anyone may change their own name, e-mail and password;
/// only an admin may change someone else, a role or the active flag.
#[derive(InputObject, Clone, Default)]
pub struct UpdateUserInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<Role>,
    #[graphql(secret)]
    pub password: Option<String>,
    pub is_active: Option<bool>,
    /// Required to change your own password or e-mail.
    #[graphql(secret)]
    pub current_password: Option<String>,
}

/// Checks a name (1 to 100 characters).
pub fn person_name(check: &mut Checker, value: &str) -> String {
    check.text("name", value, 1, 100)
}

/// Checks a team name (1 to 100 characters).
pub fn team_name(check: &mut Checker, value: &str) -> String {
    check.text("teamName", value, 1, 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(title: &str) -> CreateJobInput {
        CreateJobInput {
            title: title.into(),
            company: "Acme".into(),
            location: None,
            url: None,
            description: None,
            salary_min: None,
            salary_max: None,
            status: JobStatus::Saved,
        }
    }

    #[test]
    fn a_job_input_reports_every_problem_with_its_path() {
        let mut input = job("  ");
        input.url = Some("ftp://x".into());
        input.salary_min = Some(10);
        input.salary_max = Some(5);
        let mut check = Checker::new("input[3]");
        input.check(&mut check);
        let fields: Vec<String> = check.take().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["input[3].salaryMax", "input[3].title", "input[3].url"]
        );
    }

    #[test]
    fn e_mails_are_lower_cased_and_checked() {
        let mut check = Checker::new("input");
        assert_eq!(check.email("email", " Ada@Example.COM "), "ada@example.com");
        assert!(check.take().is_empty());
        for bad in [
            "ada",
            "ada@",
            "@x.io",
            "a b@x.io",
            "a@x",
            "a@@x.io",
            "Ada <ada@x.io>",
            "<ada@x.io>",
            "\"ada\"@x.io",
            "ada@x.io>",
            "ada(comment)@x.io",
            "ada@x.io,bob@y.io",
            "ada@x..io",
            "ada@-x.io",
        ] {
            check.email("email", bad);
            assert_eq!(check.take().len(), 1, "{bad}");
        }
    }

    #[test]
    fn an_update_must_change_something_and_keep_the_salary_range() {
        assert!(UpdateJobInput::default().validate(None, None).is_err());
        let input = UpdateJobInput {
            salary_min: MaybeUndefined::Value(200),
            ..Default::default()
        };
        assert!(input.validate(None, Some(100)).is_err());
        let input = UpdateJobInput {
            salary_max: MaybeUndefined::Null,
            ..Default::default()
        };
        assert_eq!(
            input.validate(Some(5), Some(1)).unwrap().salary_max,
            Some(None)
        );
    }
}
