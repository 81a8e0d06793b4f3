//! Application assembly: connects the database, builds the schema and the
//! router, binds the port and serves until a shutdown signal. Tests start
//! exactly this on port 0.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    auth::{Authenticator, JwtKeys, jwt, password::Passwords},
    cache::{ResponseCache, metrics::CacheMetrics},
    config::Config,
    db::{
        self,
        replicas::{ReadReplicas, WritePositions},
    },
    email::Mailer,
    events::{EventBus, relay::RelayConfig},
    graphql::{
        self, Services,
        execution::{Executor, RefreshHandler},
        persisted::PersistedQueries,
    },
    http::{self, AppState, state::Parts},
    metrics::Metrics,
    resume_writer::ResumeWriter,
    secret::Secret,
    tasks::{self, Handlers, TaskContext, TaskHandle, TaskMetrics, TaskSystem},
    throttle::Throttle,
    unit_of_work::Writer,
};

/// The signing key: `JWT_SECRET`, or the embedded default's local key file
/// (PostgreSQL needs `JWT_SECRET`: every replica must share the key).
pub fn jwt_secret(config: &Config) -> anyhow::Result<Secret> {
    config.require_shared_signing_key()?;
    match &config.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => jwt::load_or_create_secret(&config.jwt_secret_file),
    }
}

/// A built, bound, not yet serving application.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects, migrates when configured to, and binds `config.bind_addr`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Handlers::new()).await
    }

    /// Like [`Application::build`], with task handlers of more kinds (or
    /// replacing built-in ones): the queue's extension point.
    pub async fn build_with(config: Config, extra: Handlers) -> anyhow::Result<Self> {
        install_crypto_provider();
        let mut metrics = Metrics::new();
        let cache_metrics = Arc::new(CacheMetrics::default());
        cache_metrics.register(metrics.registry_mut());
        let task_metrics = Arc::new(TaskMetrics::new(metrics.registry_mut()));
        let metrics = Arc::new(metrics);
        let db = db::connect(&config.database, &metrics).await?;
        if config.auto_migrate {
            db::migrate(&db).await?;
        } else if db::pending_migrations(&db).await? > 0 {
            anyhow::bail!("the database has pending migrations: run `jobgraph migrate` first");
        }
        // Keys carry the database's instance id: a recreated database never
        // sees entries cached for the one before it (team ids restart at 1).
        let mut cache_settings = config.cache.clone();
        cache_settings.key_prefix = format!(
            "{}:{}",
            cache_settings.key_prefix,
            db::instance_id(&db).await?
        );
        let cache = ResponseCache::start(cache_settings, cache_metrics).await?;
        let task_handle = TaskHandle::new(config.tasks.max_attempts, config.tasks.refresh_delay);
        let events = match (&config.cache.redis_url, cache.shared_store()) {
            (Some(url), Some(store)) => EventBus::with_relay(
                config.live.buffer_events,
                RelayConfig {
                    redis_url: url.expose().to_owned(),
                    // With the database's instance id, like every cache key:
                    // two databases sharing a Redis never share events.
                    key_prefix: cache.key_prefix().to_owned(),
                    store,
                },
            )?,
            _ => EventBus::new(config.live.buffer_events),
        };
        let positions = Arc::new(WritePositions::new(&cache));
        let replicas =
            ReadReplicas::start(&config.database, &db, Arc::clone(&positions), &metrics).await?;
        let mut writer = Writer::new(Arc::clone(&cache), task_handle.clone(), events.clone());
        if replicas.is_some() {
            writer = writer.with_positions(positions);
        }
        let auth = Arc::new(Authenticator::new(
            JwtKeys::new(&jwt_secret(&config)?, config.jwt_ttl),
            Passwords::new(config.abuse.hash_concurrency, config.abuse.hash_wait),
        ));
        let throttle = Arc::new(Throttle::new(Arc::clone(&cache)));
        let config = Arc::new(config);
        let schemas = graphql::build_schemas(Services {
            db: db.clone(),
            config: Arc::clone(&config),
            auth: Arc::clone(&auth),
            writer: writer.clone(),
            throttle: Arc::clone(&throttle),
        })?;
        let manifest = match &config.persisted_queries_manifest {
            Some(path) => PersistedQueries::read_manifest(path)?,
            None => Default::default(),
        };
        let persisted = PersistedQueries::new(
            manifest,
            config.persisted_queries_only,
            Arc::clone(&cache),
            usize::try_from(config.limits.query.max_document_bytes).unwrap_or(usize::MAX),
        );
        let executor = Arc::new(Executor::new(
            schemas,
            graphql::analyzer(&config.limits, config.introspection)?,
            Arc::clone(&auth),
            Arc::clone(&cache),
            db.clone(),
            config.limits.clone(),
            persisted,
            replicas,
        ));
        let tasks = TaskSystem::start(Arc::new(TaskContext {
            db: db::connect_tasks(&config.database, config.tasks.concurrency, &metrics).await?,
            writer,
            throttle,
            mail_quota: config.abuse.mails_per_team,
            resume_writer: ResumeWriter::new(&config.model)?,
            mailer: Mailer::new(&config.mail)?,
            settings: config.tasks.clone(),
            metrics: task_metrics,
            handlers: {
                let mut handlers = tasks::builtin();
                handlers.insert(tasks::REFRESH, Arc::new(RefreshHandler(executor.clone())));
                handlers.extend(extra);
                handlers
            },
            wake: task_handle.wake_signal(),
        }));
        let listener = TcpListener::bind(config.bind_addr)
            .await
            .with_context(|| format!("cannot listen on {} (BIND_ADDR)", config.bind_addr))?;
        let state = AppState::new(Parts {
            config,
            db,
            auth,
            executor,
            metrics,
            cache,
            tasks,
            events,
        });
        Ok(Self { listener, state })
    }

    /// Where the server listens (tests bind port 0 and ask).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; then, within one deadline
    /// (`SHUTDOWN_GRACE_SECS`), stops taking background tasks, lets
    /// in-flight requests and running tasks finish (handing unfinished tasks
    /// back to the queue and closing the remaining connections at the
    /// deadline) and exits.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let router = http::router(self.state.clone());
        tracing::info!(addr = %self.listener.local_addr()?, "jobgraph is listening");
        let config = self.state.config();
        let grace = config.tasks.shutdown_grace;
        let stopping = self.state.stopping().clone();
        let signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.cancel();
            }
        };
        let deadline = {
            let stopping = stopping.clone();
            async move {
                stopping.cancelled().await;
                tokio::time::sleep(grace).await;
            }
        };
        let limits = http::server::ServerLimits {
            header_read_timeout: config.http.header_read_timeout,
            max_connections: config.http.max_connections,
        };
        let tasks = Arc::clone(self.state.tasks());
        let drain_tasks = async move {
            stopping.cancelled().await;
            tasks.drain().await;
        };
        tokio::join!(
            http::server::serve(self.listener, router, limits, signal, deadline),
            drain_tasks,
        );
        // A pool closes once its connections are back; one still stuck in
        // a statement (or waiting for a lock) must not hold the exit.
        let close = async {
            self.state.tasks().context().db.clone().close().await.ok();
            self.state.db().clone().close().await.ok();
        };
        if tokio::time::timeout(POOL_CLOSE_LIMIT, close).await.is_err() {
            tracing::warn!("database connections still busy at exit: left to the database to end");
        }
        tracing::info!("jobgraph stopped");
        Ok(())
    }
}

/// How long the exit waits for pooled connections to close.
const POOL_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);

/// reqwest, lettre, sqlx and fred all use rustls; only ring is built, and it
/// is made the process default so every TLS client agrees.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received: draining in-flight requests");
}
