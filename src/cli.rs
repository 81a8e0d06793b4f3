//! The command line: `serve` (default), `migrate`, `seed`, `export-schema`,
//! `token`, `repair-counters`.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::{
    app::{self, Application},
    auth::{JwtKeys, TokenSubject},
    config::Config,
    db, graphql,
    metrics::Metrics,
    seed::{self, SeedSizes},
    telemetry,
};

/// jobgraph: the GraphQL backend of a team-based job-search tracker.
///
/// Configuration comes from the environment (see the README); with none,
/// it uses a SQLite file `jobgraph.db` in the working folder.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve GraphQL on BIND_ADDR (the default command).
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Fill an empty database with deterministic demo and load data.
    Seed(SeedArgs),
    /// Print the GraphQL schema (SDL).
    ExportSchema {
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Mint a token for an existing user (scripts and load tests).
    Token {
        #[arg(long)]
        email: String,
    },
    /// Recompute the job and log counters from the rows (after data was
    /// written with the database's triggers disabled, or restored).
    RepairCounters {
        /// Only report whether they agree with a recount (exit 1 if not).
        #[arg(long)]
        check: bool,
    },
}

#[derive(Args, Debug)]
struct SeedArgs {
    /// Teams to create.
    #[arg(long, default_value_t = 3)]
    teams: u32,
    /// Users to create in all (spread over the teams; at least one per team).
    #[arg(long, default_value_t = 30)]
    users: u32,
    /// Jobs to create in all.
    #[arg(long, default_value_t = 3000)]
    jobs: u32,
    /// Activity-log entries to create in all.
    #[arg(long, default_value_t = 6000)]
    logs: u32,
    /// Write one admin token per team to this JSON file (for k6).
    #[arg(long)]
    tokens_file: Option<PathBuf>,
}

/// Runs the command line and maps failure to exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("jobgraph: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    // Before any TLS client is built (the trace exporter's is the first).
    app::install_crypto_provider();
    let telemetry = telemetry::init(config.log_json, &config.telemetry);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // A request polls through many layers of futures (HTTP, cache,
        // async-graphql's resolvers); 2 MiB is tokio's default and enough in
        // a release build, 8 MiB leaves room for a debug one too. Only
        // touched pages are ever committed.
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("jobgraph: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command.unwrap_or(Command::Serve), config));
    // Work still stuck past the shutdown deadline (a blocking call that
    // never returns) does not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "jobgraph failed");
            eprintln!("jobgraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(config).await?;
            app.run_until(app::shutdown_signal()).await
        }
        Command::Migrate => {
            let db = db::connect(&config.database, &Arc::new(Metrics::new())).await?;
            db::migrate(&db).await?;
            say("migrations applied");
            Ok(())
        }
        Command::Seed(args) => seed_demo(config, args).await,
        Command::ExportSchema { output } => {
            let sdl = graphql::sdl();
            match output {
                Some(path) => std::fs::write(&path, sdl)
                    .with_context(|| format!("cannot write {}", path.display())),
                None => {
                    say(sdl.trim_end());
                    Ok(())
                }
            }
        }
        Command::RepairCounters { check } => {
            let db = db::connect(&config.database, &Arc::new(Metrics::new())).await?;
            let drift = db::counters::drift(&db).await?;
            for (table, team, key, counted, kept) in &drift {
                say(&format!(
                    "{table}: team {team}, {key}: {kept} kept, {counted} counted"
                ));
            }
            if check {
                if drift.is_empty() {
                    say("counters agree with the rows");
                    return Ok(());
                }
                anyhow::bail!("{} counters disagree with the rows", drift.len());
            }
            db::counters::repair(&db).await?;
            say(&format!(
                "counters recomputed ({} disagreed with the rows)",
                drift.len()
            ));
            Ok(())
        }
        Command::Token { email } => {
            let db = db::connect(&config.database, &Arc::new(Metrics::new())).await?;
            let user = db::users::find_by_email(&db, &email)
                .await?
                .filter(|u| u.is_active)
                .with_context(|| format!("no active user has the e-mail {email}"))?;
            let keys = JwtKeys::new(&app::jwt_secret(&config)?, config.jwt_ttl);
            say(&keys.issue(TokenSubject {
                user_id: user.id,
                team_id: user.team_id,
                version: user.token_version,
            })?);
            Ok(())
        }
    }
}

async fn seed_demo(config: Config, args: SeedArgs) -> anyhow::Result<()> {
    let db = db::connect(&config.database, &Arc::new(Metrics::new())).await?;
    db::migrate(&db).await?;
    let sizes = SeedSizes {
        teams: args.teams.max(1),
        users: args.users,
        jobs: args.jobs,
        logs: args.logs,
    };
    let started = std::time::Instant::now();
    let report = seed::seed(&db, &sizes).await?;
    let elapsed = started.elapsed();
    let keys = JwtKeys::new(&app::jwt_secret(&config)?, config.jwt_ttl);
    let token = keys.issue(report.demo)?;
    say(&format!(
        "seeded {} teams, {} users, {} jobs, {} log entries in {:.2}s",
        report.teams,
        report.users,
        report.jobs,
        report.logs,
        elapsed.as_secs_f64()
    ));
    say(&format!(
        "demo login: {} / {}",
        seed::DEMO_EMAIL,
        seed::DEMO_PASSWORD
    ));
    say(&format!("demo token: {token}"));
    if let Some(path) = args.tokens_file {
        let tokens: Vec<serde_json::Value> = report
            .team_admins
            .iter()
            .map(|s| {
                keys.issue(*s).map(
                    |t| serde_json::json!({ "teamId": s.team_id, "userId": s.user_id, "token": t }),
                )
            })
            .collect::<anyhow::Result<_>>()?;
        std::fs::write(&path, serde_json::to_string_pretty(&tokens)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        say(&format!(
            "wrote {} team tokens to {}",
            tokens.len(),
            path.display()
        ));
    }
    Ok(())
}

/// Command output for people and scripts (not a log line).
#[allow(clippy::print_stdout)]
fn say(text: &str) {
    println!("{text}");
}
