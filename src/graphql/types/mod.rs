//! GraphQL object types. Each wraps a database row; relations resolve
//! through the request's loaders.

mod job;
mod log;
mod resume;
mod stats;
mod team;
mod user;

pub use job::Job;
pub use log::Log;
pub use resume::Resume;
pub use stats::JobStats;
pub use team::Team;
pub use user::{AuthPayload, User};
