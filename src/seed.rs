//! Deterministic demo and load data for `jobgraph seed`. The same sizes give
//! the same teams, users, jobs and log entries (timestamps are relative to
//! the moment of seeding). Everything goes in with multi-row inserts inside
//! one transaction, so 100,000 jobs take seconds.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryOrder,
};
use serde_json::json;

use crate::auth::{TokenSubject, password};
use crate::db::{
    activity::{self, Entry},
    entities::{team, user},
    enums::{JobStatus, LogLevel, Role},
    jobs::{self, NewJob},
    keyset,
};

/// The demo account printed by `jobgraph seed`.
pub const DEMO_EMAIL: &str = "demo@jobgraph.dev";
/// Every seeded user's password.
pub const DEMO_PASSWORD: &str = "jobgraph-demo";

/// How much to create, in all.
#[derive(Debug, Clone)]
pub struct SeedSizes {
    pub teams: u32,
    pub users: u32,
    pub jobs: u32,
    pub logs: u32,
}

/// What was created.
#[derive(Debug)]
pub struct SeedReport {
    pub teams: usize,
    pub users: usize,
    pub jobs: usize,
    pub logs: usize,
    /// The demo user (admin of the first team).
    pub demo: TokenSubject,
    /// The first admin of every team.
    pub team_admins: Vec<TokenSubject>,
}

/// SplitMix64: tiny, fast and stable across versions (unlike a library RNG
/// whose stream may change), which is what "deterministic" needs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TEAM_NAMES: &[&str] = &[
    "Northwind Search",
    "Blue Harbor",
    "Acme Careers",
    "Orbit Crew",
    "Maple Street",
    "Lambda Guild",
    "Red Kite",
    "Quiet Forest",
    "Copper Lane",
    "Tidewater",
];
const FIRST_NAMES: &[&str] = &[
    "Ada", "Grace", "Alan", "Linus", "Barbara", "Ken", "Margaret", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Sophie", "Donald", "Hedy", "John",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Hopper",
    "Turing",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "Knuth",
    "Lamarr",
    "Backus",
];
const COMPANIES: &[&str] = &[
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark Industries",
    "Wayne Enterprises",
    "Cyberdyne",
    "Soylent",
    "Tyrell",
    "Wonka",
    "Aperture",
    "Black Mesa",
    "Massive Dynamic",
    "Pied Piper",
    "Vandelay",
    "Gringotts",
    "Oscorp",
    "Monarch",
    "Dunder Mifflin",
    "Prestige Worldwide",
];
const TITLES: &[&str] = &[
    "Backend Engineer",
    "Senior Rust Engineer",
    "Platform Engineer",
    "Site Reliability Engineer",
    "Data Engineer",
    "Staff Engineer",
    "Engineering Manager",
    "Frontend Engineer",
    "Full-Stack Developer",
    "Database Administrator",
    "Security Engineer",
    "Product Engineer",
];
const LOCATIONS: &[&str] = &[
    "Remote",
    "Berlin",
    "London",
    "New York",
    "Lisbon",
    "Toronto",
    "Singapore",
];
const STATUSES: &[JobStatus] = &[
    JobStatus::Saved,
    JobStatus::Saved,
    JobStatus::Saved,
    JobStatus::Applied,
    JobStatus::Applied,
    JobStatus::Interviewing,
    JobStatus::Offer,
    JobStatus::Rejected,
    JobStatus::Rejected,
    JobStatus::Archived,
];
const ACTIONS: &[(&str, LogLevel)] = &[
    ("job.created", LogLevel::Info),
    ("job.updated", LogLevel::Info),
    ("job.deleted", LogLevel::Warning),
    ("resume.requested", LogLevel::Info),
    ("user.logged_in", LogLevel::Debug),
    ("user.login_failed", LogLevel::Warning),
    ("resume.failed", LogLevel::Error),
];

/// Seeds an empty database; refuses one that already holds teams.
pub async fn seed(db: &DatabaseConnection, sizes: &SeedSizes) -> anyhow::Result<SeedReport> {
    if keyset::count(db, team::Entity::find()).await? > 0 {
        anyhow::bail!("the database already holds data; seed a fresh database");
    }
    let hash = password::Passwords::new(1, std::time::Duration::from_secs(60))
        .hash(DEMO_PASSWORD.to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let txn = crate::db::begin_write(db).await?;
    let report = seed_in(&txn, sizes, &hash).await?;
    txn.commit().await?;
    Ok(report)
}

async fn seed_in(
    db: &impl ConnectionTrait,
    sizes: &SeedSizes,
    hash: &str,
) -> Result<SeedReport, DbErr> {
    let mut rng = Rng(0x6a6f_6267_7261_7068); // "jobgraph"
    let now = crate::db::now();
    let ago = |rng: &mut Rng, max_days: i64| -> DateTime<Utc> {
        now - Duration::seconds(rng.below((max_days * 86_400) as usize) as i64)
    };

    // Teams.
    let team_rows: Vec<team::ActiveModel> = (0..sizes.teams as usize)
        .map(|i| {
            let name = format!("{} {}", TEAM_NAMES[i % TEAM_NAMES.len()], i + 1);
            team::ActiveModel {
                slug: Set(crate::db::teams::slugify(&name)),
                name: Set(name),
                created_at: Set(now - Duration::days(365)),
                ..Default::default()
            }
        })
        .collect();
    for chunk in team_rows.chunks(1000) {
        team::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    let teams = team::Entity::find()
        .order_by_asc(team::Column::Id)
        .all(db)
        .await?;

    // Users: the first of every team is its admin; the very first is the demo user.
    let user_count = (sizes.users as usize).max(teams.len());
    let user_rows: Vec<user::ActiveModel> = (0..user_count)
        .map(|i| {
            let team = &teams[i % teams.len()];
            let nth_in_team = i / teams.len();
            let (email, role) = match (i, nth_in_team) {
                (0, _) => (DEMO_EMAIL.to_owned(), Role::Admin),
                (_, 0) => (format!("admin@{}.example.com", team.slug), Role::Admin),
                _ => (
                    format!("user{nth_in_team}@{}.example.com", team.slug),
                    if nth_in_team % 4 == 3 {
                        Role::Viewer
                    } else {
                        Role::Member
                    },
                ),
            };
            let created = now - Duration::days(300) + Duration::minutes(i as i64);
            user::ActiveModel {
                team_id: Set(team.id),
                email: Set(email),
                name: Set(format!(
                    "{} {}",
                    rng.pick(FIRST_NAMES),
                    rng.pick(LAST_NAMES)
                )),
                role: Set(role),
                password_hash: Set(Some(hash.to_owned())),
                is_active: Set(true),
                created_at: Set(created),
                updated_at: Set(created),
                ..Default::default()
            }
        })
        .collect();
    for chunk in user_rows.chunks(1000) {
        user::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    let users = user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(db)
        .await?;
    let members_of = |team_id: i64| -> Vec<i64> {
        users
            .iter()
            .filter(|u| u.team_id == team_id)
            .map(|u| u.id)
            .collect()
    };
    let team_members: Vec<Vec<i64>> = teams.iter().map(|t| members_of(t.id)).collect();

    // Jobs.
    let mut job_rows = Vec::with_capacity(sizes.jobs as usize);
    for i in 0..sizes.jobs as usize {
        let t = i % teams.len();
        let creator = *rng.pick(&team_members[t]);
        let company = rng.pick(COMPANIES);
        let title = rng.pick(TITLES);
        let salary_min = 60_000 + 5_000 * rng.below(20) as i64;
        job_rows.push((
            teams[t].id,
            Some(creator),
            NewJob {
                title: (*title).to_owned(),
                company: (*company).to_owned(),
                location: Some((*rng.pick(LOCATIONS)).to_owned()),
                url: Some(format!(
                    "https://jobs.example.com/{}/{i}",
                    crate::db::teams::slugify(company)
                )),
                description: Some(format!("{title} at {company}. Seeded job #{i}.")),
                salary_min: Some(salary_min),
                salary_max: Some(salary_min + 10_000 + 5_000 * rng.below(10) as i64),
                status: *rng.pick(STATUSES),
                created_at: Some(ago(&mut rng, 180)),
            },
        ));
    }
    jobs::insert_rows(db, &job_rows).await?;

    // Activity log.
    let mut entries = Vec::with_capacity(sizes.logs as usize);
    for i in 0..sizes.logs as usize {
        let t = i % teams.len();
        let user_id = *rng.pick(&team_members[t]);
        let (action, level) = *rng.pick(ACTIONS);
        entries.push((
            Entry {
                team_id: Some(teams[t].id),
                user_id: Some(user_id),
                action,
                level,
                message: format!("seeded {action} #{i}"),
                metadata: Some(json!({ "seed": i })),
            },
            ago(&mut rng, 90),
        ));
    }
    activity::record_many_at(db, entries).await?;

    let subject = |u: &user::Model| TokenSubject {
        user_id: u.id,
        team_id: u.team_id,
        version: u.token_version,
    };
    let team_admins = teams
        .iter()
        .filter_map(|t| {
            users
                .iter()
                .find(|u| u.team_id == t.id && u.role == Role::Admin)
        })
        .map(subject)
        .collect();
    Ok(SeedReport {
        teams: teams.len(),
        users: users.len(),
        jobs: job_rows.len(),
        logs: sizes.logs as usize,
        demo: subject(&users[0]),
        team_admins,
    })
}
