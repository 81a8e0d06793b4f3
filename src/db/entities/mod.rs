//! sea-orm entities, one per table of SPEC's data model.

pub mod job;
pub mod log;
pub mod resume;
pub mod task;
pub mod team;
pub mod user;
