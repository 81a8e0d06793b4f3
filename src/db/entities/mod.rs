//! sea-orm entities, one per table (the data model the README's tables name).

pub mod job;
pub mod log;
pub mod resume;
pub mod task;
pub mod team;
pub mod user;
