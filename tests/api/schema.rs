//! `schema.graphql` is exported from the code; it must never drift.

use std::process::Command;

#[test]
fn schema_graphql_matches_the_code() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql"))
        .expect("schema.graphql exists at the repository root");
    let exported = jobgraph::graphql::sdl();
    assert!(
        committed == exported,
        "schema.graphql differs from the code: run `cargo run -- export-schema -o schema.graphql`"
    );
}

#[test]
fn export_schema_prints_the_same_sdl() {
    let output = Command::new(env!("CARGO_BIN_EXE_jobgraph"))
        .arg("export-schema")
        .env_remove("DATABASE_URL")
        .output()
        .expect("run jobgraph export-schema");
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.trim_end(), jobgraph::graphql::sdl().trim_end());
}

#[test]
fn the_schema_has_every_field_of_the_spec() {
    let sdl = jobgraph::graphql::sdl();
    for needle in [
        "viewer: User",
        "job(id: ID!): Job",
        "jobs(first: Int, after: String, last: Int, before: String, filter: JobFilter, orderBy: JobOrder): JobConnection!",
        "jobsPage(page: Int = 1, pageSize: Int = 20, filter: JobFilter): JobPage!",
        "jobStats: JobStats!",
        "user(id: ID!): User",
        "users(first: Int, after: String, filter: UserFilter): UserConnection!",
        "team: Team!",
        "logs(first: Int, after: String, filter: LogFilter): LogConnection!",
        "resume(id: ID!): Resume",
        "signup(input: SignupInput!): AuthPayload!",
        "login(email: String!, password: String!): AuthPayload!",
        "createJob(input: CreateJobInput!): Job!",
        "createJobs(input: [CreateJobInput!]!): [Job!]!",
        "updateJob(id: ID!, input: UpdateJobInput!): Job!",
        "deleteJob(id: ID!): Boolean!",
        "createUser(input: CreateUserInput!): User!",
        "updateUser(id: ID!, input: UpdateUserInput!): User!",
        "deactivateUser(id: ID!): User!",
        "generateResume(jobId: ID!): Resume!",
        "topCompanies(limit: Int = 10): [CompanyCount!]!",
        "createdLast7Days: Int!",
        "totalCount: Int!",
        "hasPreviousPage: Boolean!",
    ] {
        assert!(sdl.contains(needle), "the schema lacks `{needle}`");
    }
    for ty in [
        "enum JobStatus",
        "enum LogLevel",
        "enum Role",
        "enum ResumeStatus",
        "type JobPage",
        "type PageInfo",
    ] {
        assert!(sdl.contains(ty), "the schema lacks `{ty}`");
    }
}
