//! The one path every GraphQL request takes, from an HTTP handler or a
//! background refresh: decode, analyse (limits and cache plan, see
//! [`super::analysis`]), then either answer from the response cache —
//! lookup, single-flight fill — or execute. The HTTP layer only turns the
//! [`Answer`] into a status, headers and a body.

mod source;

use std::{net::IpAddr, sync::Arc};

use async_graphql::{
    BatchRequest, Request as GqlRequest, Response as GqlResponse, ServerError,
    parser::types::{ExecutableDocument, OperationType},
};
use bytes::Bytes;
use sea_orm::DatabaseConnection;
use serde_json::json;

pub use self::source::Source;
use super::{
    JobgraphSchema, Schemas,
    analysis::{Analysis, Analyzer, Caller, Refusal},
    budget::ResponseBudget,
    context::Session,
    persisted::PersistedQueries,
};
use crate::{
    auth::{AuthResolveError, Authenticator, TokenSubject, Viewer},
    cache::{Computed, Lookup, Plan, Purpose, ResponseCache, Scope, Ticket, Validator, WarmSpec},
    config::Limits,
    db::{self, replicas::ReadReplicas},
    error::ErrorCode,
    tasks::{Failure, TaskContext, TaskHandler, id_field},
    telemetry,
};
use tracing::Instrument;

/// How a request ended, for the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Executed (possibly with field errors): 200.
    Executed,
    /// The body or query string is not a GraphQL request: 400.
    BadRequest,
    /// The document did not parse: 400 (200 for `application/json`
    /// clients, as GraphQL over HTTP asks for legacy clients).
    ParseFailed,
    /// The document failed validation or its variables did not coerce:
    /// 400 (200 for `application/json` clients).
    Invalid,
    /// The document is valid but beyond a limit (cost, depth, aliases,
    /// answer size…): 422 (200 for `application/json` clients).
    Refused,
    /// A mutation sent over GET: 405.
    MutationOverGet,
    /// The database could not serve it (down, pool exhausted, statement
    /// timed out) or too much work was waiting: 503 with `Retry-After`.
    Unavailable,
    /// A rate limit or quota was reached: 429 with `Retry-After` seconds.
    Limited(u64),
    /// The token was refused (revoked, account deactivated): 401.
    Unauthenticated,
}

/// What the cache did with a request (`X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheState {
    Hit,
    Miss,
    Bypass,
}

impl CacheState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Bypass => "BYPASS",
        }
    }
}

/// The result of one request (or batch), ready to be sent.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    pub body: Bytes,
    /// Set on requests that went through the cache.
    pub cache: Option<CacheState>,
    /// Set when the answer is a stored cache entry (HTTP revalidation).
    pub validator: Option<Validator>,
    /// Errors the answer carries (its summary log line says so).
    pub errors: usize,
    /// The code of the first one.
    first_error: Option<ErrorCode>,
    /// Executed without any error and without a `null` root field (a job
    /// that does not exist yet must not be remembered): may be stored.
    storable: bool,
}

impl Answer {
    fn new(outcome: Outcome, body: Bytes) -> Self {
        Self {
            outcome,
            body,
            cache: None,
            validator: None,
            errors: 0,
            first_error: None,
            storable: false,
        }
    }

    /// A request-level error with a code.
    pub fn error(outcome: Outcome, code: ErrorCode, message: &str) -> Self {
        Self::new(outcome, error_body(code, message)).with_errors(1, Some(code))
    }

    /// Notes how many errors the answer carries and the first one's code
    /// (the request's log line and per-operation metrics say so).
    fn with_errors(mut self, errors: usize, first: Option<ErrorCode>) -> Self {
        if errors > 0 {
            tracing::Span::current().record("errors", errors);
            telemetry::note_error_code(first.unwrap_or(ErrorCode::Internal).as_str());
        }
        self.errors = errors;
        self.first_error = first;
        self
    }

    fn with_cache(mut self, state: CacheState) -> Self {
        tracing::Span::current().record("cache", state.label());
        self.cache = Some(state);
        self
    }
}

/// Who runs a request, from where, and on which pool.
#[derive(Clone, Copy)]
struct Call<'a> {
    viewer: Option<Viewer>,
    client: Option<IpAddr>,
    db: &'a DatabaseConnection,
    over_get: bool,
}

/// A remembered identity not yet seen to be current: the `users`
/// generation it was read under, checked in the cache lookup's round trip.
#[derive(Clone, Copy)]
struct Unconfirmed {
    subject: TokenSubject,
    generation: u64,
}

/// What the plan memo knows of a request it has analysed before.
struct Planned {
    plan: Plan,
    /// For the request's span (a hit never parses).
    operation: Option<String>,
}

/// Runs requests against the schema, through the cache where it can.
pub struct Executor {
    schemas: Schemas,
    analyzer: Analyzer,
    auth: Arc<Authenticator>,
    cache: Arc<ResponseCache>,
    db: DatabaseConnection,
    limits: Limits,
    /// Analysed plans by the hash of the request's bytes, so the hit path
    /// never parses.
    plans: moka::sync::Cache<u128, Arc<Planned>>,
    /// Parsed documents by the hash of their text (uncached requests and
    /// misses skip the parser), weighed by the text's size.
    documents: moka::sync::Cache<u128, Arc<Parsed>>,
    /// Documents named by hash (APQ, trusted documents).
    persisted: PersistedQueries,
    /// Requests (document, variables, operation name, by hash) that passed
    /// async-graphql's validation rules: the same request again skips them.
    validated: moka::sync::Cache<u128, ()>,
    /// Read replicas, when configured: queries run there when they can.
    replicas: Option<Arc<ReadReplicas>>,
}

/// A parsed document and what it weighs in the document cache (its text's
/// size: the syntax tree grows with it).
struct Parsed {
    doc: ExecutableDocument,
    text_bytes: u32,
}

impl Executor {
    pub fn new(
        schemas: Schemas,
        analyzer: Analyzer,
        auth: Arc<Authenticator>,
        cache: Arc<ResponseCache>,
        db: DatabaseConnection,
        limits: Limits,
        persisted: PersistedQueries,
        replicas: Option<Arc<ReadReplicas>>,
    ) -> Self {
        Self {
            persisted,
            replicas,
            schemas,
            analyzer,
            auth,
            cache,
            db,
            limits,
            plans: moka::sync::Cache::builder().max_capacity(50_000).build(),
            validated: moka::sync::Cache::builder().max_capacity(50_000).build(),
            // Weighed by text: 4 MiB of distinct document text (trees a few
            // times that), far beyond any frontend's set of queries.
            documents: moka::sync::Cache::builder()
                .max_capacity(4 * 1024 * 1024)
                .weigher(|_, parsed: &Arc<Parsed>| parsed.text_bytes.saturating_add(64))
                .build(),
        }
    }

    pub fn schema(&self) -> &JobgraphSchema {
        &self.schemas.measured
    }

    /// The read replicas, when configured.
    pub fn replicas(&self) -> Option<&ReadReplicas> {
        self.replicas.as_deref()
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    /// The cache plan of a request analysed before (tests drive the cache
    /// exactly as this path does).
    pub fn known_plan(&self, raw: &[u8]) -> Option<Plan> {
        self.plans
            .get(&crate::cache::request_hash(raw))
            .map(|p| p.plan.clone())
    }

    /// Answers one HTTP request: a single request or a batch. `token` is
    /// the verified bearer token, `client` the caller's address (rate
    /// limits).
    pub async fn run(
        &self,
        source: Source,
        token: Option<TokenSubject>,
        client: Option<IpAddr>,
    ) -> Answer {
        if let Some(subject) = token
            && self.cache.enabled()
            && source.is_single()
        {
            return self.signed_in(&source, subject, client).await;
        }
        // Boxed: the hit path above stays a small future (axum moves the
        // whole handler future into its box on every request).
        Box::pin(self.direct(source, token, client)).await
    }

    /// A request that does not go through the cache: anonymous, a batch,
    /// or the cache is off.
    async fn direct(
        &self,
        source: Source,
        token: Option<TokenSubject>,
        client: Option<IpAddr>,
    ) -> Answer {
        let viewer = match token {
            Some(subject) => match self.resolve(subject).await {
                Ok(viewer) => Some(viewer),
                Err(answer) => return answer,
            },
            None => None,
        };
        let call = Call {
            viewer,
            client,
            db: &self.db,
            over_get: source.over_get(),
        };
        if let Err(answer) = self.check_body(&source) {
            return answer;
        }
        let batch = match self.decode_batch(&source).await {
            Ok(batch) => batch,
            Err(answer) => return answer,
        };
        match batch {
            BatchRequest::Single(request) => self.uncached(request, call).await,
            BatchRequest::Batch(requests) => self.batch(requests, call).await,
        }
    }

    async fn batch(&self, requests: Vec<GqlRequest>, call: Call<'_>) -> Answer {
        let max = self.limits.max_batch_operations;
        if requests.is_empty() || requests.len() > max {
            return Answer::error(
                Outcome::BadRequest,
                ErrorCode::BatchLimit,
                &format!(
                    "a batch holds 1 to {max} operations, not {}",
                    requests.len()
                ),
            );
        }
        let caller = caller_of(call.viewer);
        let mut prepared = Vec::with_capacity(requests.len());
        let mut sign_ins = 0;
        for mut request in requests {
            let analysis = self.prepare(&mut request, caller);
            if let Ok(a) = &analysis {
                sign_ins += a.sign_ins;
            }
            prepared.push((request, analysis));
        }
        if sign_ins > 1 {
            return Answer::error(
                Outcome::Refused,
                ErrorCode::TooManySignIns,
                "a batch may hold at most one login, signup or createUser",
            );
        }
        let mut parts = Vec::with_capacity(prepared.len());
        for (request, analysis) in prepared {
            let executed = match analysis {
                Ok(analysis) => self.execute(request, &analysis, call).await,
                Err(failed) => failed,
            };
            parts.push(executed.body);
        }
        let mut body = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(part);
        }
        body.push(b']');
        Answer::new(Outcome::Executed, body.into())
    }

    /// Refuses a body with lists or nesting beyond what any input holds,
    /// before decoding it (a body seen before is in the plan memo).
    fn check_body(&self, source: &Source) -> Result<(), Answer> {
        match source {
            Source::Body(body) => self.analyzer.check_body(body).map_err(refused),
            Source::Query(_) => Ok(()),
        }
    }

    /// Checks the text, parses once (the document stays in the request for
    /// execution) and analyses it.
    fn prepare(&self, request: &mut GqlRequest, caller: Caller) -> Result<Analysis, Answer> {
        let tokens = self
            .analyzer
            .check_text(&request.query, caller)
            .map_err(refused)?;
        let operation = request.operation_name.clone();
        let variables = std::mem::take(&mut request.variables);
        // A document seen before is not parsed again (its analysis depends
        // on the variables, so that runs every time; it is one short walk).
        let text = crate::cache::request_hash(request.query.as_bytes());
        let known = self.documents.get(&text);
        if let Some(parsed) = &known {
            request.set_parsed_query(parsed.doc.clone());
        }
        let text_bytes = u32::try_from(request.query.len()).unwrap_or(u32::MAX);
        let analysis = match request.parsed_query() {
            Ok(doc) => {
                if known.is_none() {
                    self.documents.insert(
                        text,
                        Arc::new(Parsed {
                            doc: doc.clone(),
                            text_bytes,
                        }),
                    );
                }
                self.analyzer
                    .analyse(doc, operation.as_deref(), &variables, caller, tokens)
                    .map_err(refused)
            }
            Err(mut error) => {
                tag(&mut error, ErrorCode::GraphqlParseFailed);
                Err(Answer::new(Outcome::ParseFailed, errors_body(&[error]))
                    .with_errors(1, Some(ErrorCode::GraphqlParseFailed)))
            }
        };
        request.variables = variables;
        if let Ok(analysis) = &analysis {
            name_operation(analysis.name.as_deref());
        }
        analysis
    }

    /// The current viewer behind a token, or the answer refusing it.
    async fn resolve(&self, subject: TokenSubject) -> Result<Viewer, Answer> {
        match self.auth.resolve(&self.db, &self.cache, subject).await {
            Ok(viewer) => {
                tracing::Span::current().record("team", viewer.team_id);
                Ok(viewer)
            }
            Err(AuthResolveError::Refused(reason)) => Err(Answer::error(
                Outcome::Unauthenticated,
                ErrorCode::Unauthenticated,
                &reason.to_string(),
            )),
            Err(AuthResolveError::Database(e)) => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "checking a token against the database failed"
                );
                Err(Answer::error(
                    Outcome::Unavailable,
                    ErrorCode::Unavailable,
                    "the service cannot check your token right now: retry shortly",
                ))
            }
        }
    }

    /// A single signed-in request through the cache. A viewer this replica
    /// remembers is used at once and confirmed by the `users` generation the
    /// lookup reads alongside the entry; otherwise it is resolved first.
    async fn signed_in(
        &self,
        source: &Source,
        subject: TokenSubject,
        client: Option<IpAddr>,
    ) -> Answer {
        let (viewer, unconfirmed) = match self.auth.remembered(subject) {
            Some((viewer, generation)) => {
                tracing::Span::current().record("team", viewer.team_id);
                (
                    viewer,
                    Some(Unconfirmed {
                        subject,
                        generation,
                    }),
                )
            }
            None => match Box::pin(self.resolve(subject)).await {
                Ok(viewer) => (viewer, None),
                Err(answer) => return answer,
            },
        };
        let call = Call {
            viewer: Some(viewer),
            client,
            db: &self.db,
            over_get: source.over_get(),
        };
        self.cached(source, viewer, Purpose::Client, call, unconfirmed)
            .await
    }

    async fn uncached(&self, mut request: GqlRequest, call: Call<'_>) -> Answer {
        match self.prepare(&mut request, caller_of(call.viewer)) {
            Ok(analysis) => self.execute(request, &analysis, call).await,
            Err(answer) => answer,
        }
    }

    /// The cache path for one signed-in request: plan (once per distinct
    /// request), one round trip to look up, and on a miss one execution
    /// shared by every concurrent identical request.
    async fn cached(
        &self,
        source: &Source,
        viewer: Viewer,
        purpose: Purpose,
        call: Call<'_>,
        unconfirmed: Option<Unconfirmed>,
    ) -> Answer {
        let hash = crate::cache::request_hash(source.raw());
        let mut prepared: Option<(GqlRequest, Analysis)> = None;
        let planned = match self.plans.get(&hash) {
            Some(planned) => planned,
            None => {
                if let Err(answer) = self.check_body(source) {
                    return answer;
                }
                let mut request = match Box::pin(self.decode(source)).await {
                    Ok(request) => request,
                    Err(answer) => return answer,
                };
                let analysis = match self.prepare(&mut request, Caller::Authenticated) {
                    Ok(analysis) => analysis,
                    Err(answer) => return answer,
                };
                let planned = Arc::new(Planned {
                    plan: analysis.plan.clone(),
                    operation: analysis.name.clone(),
                });
                self.plans.insert(hash, Arc::clone(&planned));
                prepared = Some((request, analysis));
                planned
            }
        };
        let Plan::Cache(plan) = &planned.plan else {
            if let Some(pending) = unconfirmed {
                match Box::pin(self.resolve(pending.subject)).await {
                    Ok(current) if current == viewer => {}
                    Ok(current) => return self.as_now(source, current, call).await,
                    Err(answer) => return answer,
                }
            }
            return match Box::pin(self.prepared(source, prepared)).await {
                Ok((request, analysis)) => self.execute(request, &analysis, call).await,
                Err(answer) => answer,
            };
        };
        let scope = Scope {
            team_id: viewer.team_id,
            role: viewer.role,
            user_id: viewer.user_id,
        };
        let lookup_span = telemetry::inner_span(|| {
            tracing::debug_span!(
                "cache.lookup",
                otel.name = "cache lookup",
                cache.kind = plan.kinds.first().map_or("", |k| k.label()),
                cache.outcome = tracing::field::Empty,
            )
        });
        let (lookup, users) = self
            .cache
            .lookup_checking_users(hash, plan, &scope, purpose)
            .instrument(lookup_span.clone())
            .await;
        lookup_span.record(
            "cache.outcome",
            match &lookup {
                Lookup::Hit(_) => "hit",
                Lookup::Miss(_) => "miss",
                Lookup::Bypass => "bypass",
            },
        );
        drop(lookup_span);
        if let Some(pending) = unconfirmed
            && users != Some(pending.generation)
        {
            match Box::pin(self.resolve(pending.subject)).await {
                Ok(current) if current == viewer => {}
                Ok(current) => return self.as_now(source, current, call).await,
                Err(answer) => return answer,
            }
        }
        match lookup {
            Lookup::Hit(hit) => {
                if purpose == Purpose::Client {
                    self.cache.note_read(scope.team_id, hash);
                }
                name_operation(planned.operation.as_deref());
                let mut answer =
                    Answer::new(Outcome::Executed, hit.body).with_cache(CacheState::Hit);
                answer.validator = Some(hit.validator);
                answer
            }
            Lookup::Bypass => match Box::pin(self.prepared(source, prepared)).await {
                Ok((request, analysis)) => {
                    tracing::Span::current().record("cache", CacheState::Bypass.label());
                    self.execute(request, &analysis, call)
                        .await
                        .with_cache(CacheState::Bypass)
                }
                Err(answer) => answer,
            },
            Lookup::Miss(ticket) => {
                Box::pin(self.miss(source, scope, purpose, call, ticket, prepared)).await
            }
        }
    }

    /// A miss: confirm the jobs the key names still exist, then execute
    /// once for every concurrent identical request and store the answer.
    /// Boxed by its caller, so a hit does not carry this future's size.
    async fn miss(
        &self,
        source: &Source,
        scope: Scope,
        purpose: Purpose,
        call: Call<'_>,
        mut ticket: Ticket,
        prepared: Option<(GqlRequest, Analysis)>,
    ) -> Answer {
        if !ticket.unverified_jobs().is_empty() {
            let existing = db::jobs::existing_ids(call.db, scope.team_id, ticket.unverified_jobs())
                .await
                .unwrap_or_default();
            self.cache
                .verify(&mut ticket, scope.team_id, &existing)
                .await;
        }
        // Recent reads are recomputed after the team's writes; the
        // replay looks each one up first, so only the answers a
        // write made stale (the lists, or the changed job's detail)
        // run again.
        if purpose == Purpose::Client {
            self.cache.note_warmable(WarmSpec {
                raw: Bytes::copy_from_slice(source.raw()),
                over_get: call.over_get,
                scope,
            });
        }
        let (request, analysis) = match self.prepared(source, prepared).await {
            Ok(prepared) => prepared,
            Err(answer) => return answer,
        };
        tracing::Span::current().record("cache", CacheState::Miss.label());
        // What the leader saw (a follower shares a stored answer,
        // which has no errors).
        let errors = std::sync::Mutex::new((0, None));
        let computed = self
            .cache
            .fill(ticket, || async {
                let answer = self.execute(request, &analysis, call).await;
                if let Ok(mut seen) = errors.lock() {
                    *seen = (answer.errors, answer.first_error);
                }
                Computed {
                    cacheable: answer.storable,
                    status: outcome_code(answer.outcome),
                    body: answer.body,
                    validator: None,
                }
            })
            .await;
        let (count, first) = errors.into_inner().unwrap_or_default();
        let mut answer = Answer::new(code_outcome(computed.status), computed.body.clone())
            .with_errors(count, first)
            .with_cache(CacheState::Miss);
        answer.validator = computed.validator;
        answer
    }

    /// Starts over as the viewer is now (the remembered one was outdated:
    /// a role change, say).
    fn as_now<'a>(
        &'a self,
        source: &'a Source,
        viewer: Viewer,
        call: Call<'a>,
    ) -> futures::future::BoxFuture<'a, Answer> {
        let call = Call {
            viewer: Some(viewer),
            ..call
        };
        Box::pin(self.cached(source, viewer, Purpose::Client, call, None))
    }

    /// The decoded and analysed request, reusing what planning produced.
    async fn prepared(
        &self,
        source: &Source,
        prepared: Option<(GqlRequest, Analysis)>,
    ) -> Result<(GqlRequest, Analysis), Answer> {
        if let Some(prepared) = prepared {
            return Ok(prepared);
        }
        let mut request = self.decode(source).await?;
        let analysis = self.prepare(&mut request, Caller::Authenticated)?;
        Ok((request, analysis))
    }

    /// Exactly one request, with its persisted document resolved.
    async fn decode(&self, source: &Source) -> Result<GqlRequest, Answer> {
        let mut request = source
            .decode()
            .map_err(|m| Answer::error(Outcome::BadRequest, ErrorCode::BadRequest, &m))?;
        self.resolve_persisted(&mut request).await?;
        Ok(request)
    }

    /// One request or a batch, each with its persisted document resolved.
    async fn decode_batch(&self, source: &Source) -> Result<BatchRequest, Answer> {
        let mut batch = source
            .decode_batch()
            .map_err(|m| Answer::error(Outcome::BadRequest, ErrorCode::BadRequest, &m))?;
        match &mut batch {
            BatchRequest::Single(request) => self.resolve_persisted(request).await?,
            BatchRequest::Batch(requests) => {
                for request in requests {
                    self.resolve_persisted(request).await?;
                }
            }
        }
        Ok(batch)
    }

    async fn resolve_persisted(&self, request: &mut GqlRequest) -> Result<(), Answer> {
        // Boxed: resolving a persisted document may go to Redis (a large
        // future), and most requests carry their text.
        Box::pin(self.persisted.resolve(request))
            .await
            .map_err(|refusal| {
                let outcome = match refusal.code {
                    ErrorCode::BadRequest => Outcome::BadRequest,
                    _ => Outcome::Invalid,
                };
                Answer::error(outcome, refusal.code, &refusal.message)
            })
    }

    /// Replays the team's reads that clients still ask for (lists,
    /// `jobStats`, the log, details) through the cache on `db`, so the next
    /// read after a write is a hit; returns how many were recomputed.
    pub async fn refresh_team(&self, team_id: i64, db: &DatabaseConnection) -> usize {
        let mut refreshed = 0;
        // Whether each caller may still read, asked once per refresh.
        let mut callers: Vec<(Scope, bool)> = Vec::new();
        for spec in self.cache.take_replays(team_id) {
            // Replay only as the caller is now: active, same team, same role.
            let still = match callers.iter().find(|(seen, _)| *seen == spec.scope) {
                Some((_, still)) => *still,
                None => match db::users::find_any(db, spec.scope.user_id).await {
                    Ok(current) => {
                        let still = matches!(&current, Some(u)
                            if u.is_active && u.team_id == team_id && u.role == spec.scope.role);
                        callers.push((spec.scope, still));
                        still
                    }
                    // Not known now: skip it this time, keep it.
                    Err(_) => continue,
                },
            };
            if !still {
                self.cache.forget_warmable(team_id, &spec.raw);
                continue;
            }
            let viewer = Viewer {
                user_id: spec.scope.user_id,
                team_id: spec.scope.team_id,
                role: spec.scope.role,
            };
            let source = if spec.over_get {
                Source::Query(String::from_utf8_lossy(&spec.raw).into_owned())
            } else {
                Source::Body(spec.raw.clone())
            };
            let call = Call {
                viewer: Some(viewer),
                client: None,
                db,
                over_get: spec.over_get,
            };
            let answer = self
                .cached(&source, viewer, Purpose::Refresh, call, None)
                .await;
            if answer.cache == Some(CacheState::Miss) {
                refreshed += 1;
            }
        }
        refreshed
    }

    /// Executes an analysed request with a fresh session (viewer, loaders),
    /// in a span of its own (the GraphQL operation, for traces).
    ///
    /// Boxed once here, where every path (HTTP, cache fill, refresh, live
    /// connections) meets: the callers' futures then hold a pointer instead
    /// of async-graphql's execution. Stack depth itself is the threads'
    /// business (8 MiB: `cli.rs`, and `.cargo/config.toml` for tests).
    fn execute<'a>(
        &'a self,
        request: GqlRequest,
        analysis: &'a Analysis,
        call: Call<'a>,
    ) -> futures::future::BoxFuture<'a, Answer> {
        let kind = match analysis.operation {
            Some(OperationType::Query) => "query",
            Some(OperationType::Mutation) => "mutation",
            Some(OperationType::Subscription) => "subscription",
            None => "unknown",
        };
        let name = analysis.name.as_deref().unwrap_or("anonymous");
        let span = telemetry::inner_span(|| {
            tracing::debug_span!(
                "graphql.operation",
                otel.name = %format_args!("{kind} {name}"),
                graphql.operation.type = kind,
                graphql.operation.name = name,
                graphql.document = %format_args!("{:032x}", crate::cache::request_hash(request.query.as_bytes())),
            )
        });
        Box::pin(
            self.execute_in_span(request, analysis, call)
                .instrument(span),
        )
    }

    async fn execute_in_span(
        &self,
        request: GqlRequest,
        analysis: &Analysis,
        call: Call<'_>,
    ) -> Answer {
        if call.over_get && analysis.operation == Some(OperationType::Mutation) {
            return Answer::error(
                Outcome::MutationOverGet,
                ErrorCode::MethodNotAllowed,
                "mutations must be sent with POST",
            );
        }
        // A query of a signed-in caller may run on a read replica that has
        // replayed the team's last write; mutations (and the reads inside
        // them) never do.
        let replicas = self
            .replicas
            .as_deref()
            .filter(|_| analysis.operation == Some(OperationType::Query) && call.viewer.is_some());
        let Some(replicas) = replicas else {
            return self.execute_on(request, analysis, call).await;
        };
        let team_id = call.viewer.map_or(0, |v| v.team_id);
        let route = replicas.route(team_id, call.db).await;
        let Some(replica) = route.replica else {
            replicas.count_read(None);
            return self.execute_on(request, analysis, call).await;
        };
        // Kept to run again on the primary if the replica fails.
        let mut request = request;
        let again = copy_request(&mut request);
        let answer = self
            .execute_on(
                request,
                analysis,
                Call {
                    db: route.db,
                    ..call
                },
            )
            .await;
        if answer.outcome != Outcome::Unavailable {
            replicas.count_read(Some(replica));
            return answer;
        }
        tracing::warn!(
            replica,
            "a read replica failed a query: running it on the primary"
        );
        replicas.failed(replica);
        replicas.count_read(None);
        self.execute_on(again, analysis, call).await
    }

    async fn execute_on(&self, request: GqlRequest, analysis: &Analysis, call: Call<'_>) -> Answer {
        let mut request = request.data(Session::new(call.db.clone(), call.viewer, call.client));
        // Only a query whose answer could pass the limit is measured while
        // it is built (the measuring runs around every field).
        let budget = (analysis.operation == Some(OperationType::Query) && analysis.needs_measure)
            .then(|| Arc::new(ResponseBudget::new(self.limits.max_response_bytes)));
        // Set when this run validates a request not validated before (only
        // the lean schema has a copy that skips validation).
        let mut newly_validated = None;
        let schema = match &budget {
            Some(budget) => {
                request = request.data(Arc::clone(budget));
                &self.schemas.measured
            }
            None => {
                let key = validation_key(&request);
                if self.validated.contains_key(&key) {
                    &self.schemas.lean_validated
                } else {
                    newly_validated = Some(key);
                    &self.schemas.lean
                }
            }
        };
        let mut response = schema.execute(request).await;
        if let Some(budget) = budget
            && budget.exceeded()
        {
            return Answer::error(
                Outcome::Refused,
                ErrorCode::ResponseTooLarge,
                &format!(
                    "the answer would be larger than {} bytes (MAX_RESPONSE_BYTES): ask for fewer items or fields",
                    budget.max()
                ),
            );
        }
        if failed_as_a_whole(&mut response) {
            // Request errors carry no `data` at all, per the spec.
            return Answer::new(Outcome::Invalid, errors_body(&response.errors))
                .with_errors(response.errors.len(), first_code(&response.errors));
        }
        if let Some(key) = newly_validated {
            self.validated.insert(key, ());
        }
        // Resolver errors always carry a code; the only ones without are
        // async-graphql's own argument coercion failures found while
        // executing (a `DateTime` literal that does not parse, say): the
        // client's input.
        for error in &mut response.errors {
            tag(error, ErrorCode::BadUserInput);
        }
        let null_root = match &response.data {
            async_graphql::Value::Object(fields) => {
                fields.values().any(|v| *v == async_graphql::Value::Null)
            }
            _ => true,
        };
        let outcome = response
            .errors
            .iter()
            .find_map(refusal_outcome)
            .unwrap_or(Outcome::Executed);
        let mut answer = Answer::new(outcome, response_body(&response))
            .with_errors(response.errors.len(), first_code(&response.errors));
        answer.storable = response.errors.is_empty() && !null_root;
        answer
    }
}

/// One message of an operation run over a long-lived connection
/// (WebSocket or SSE).
#[derive(Debug, Clone)]
pub enum Delivery {
    /// A result: `{"data": …, "errors": …}`.
    Next(Bytes),
    /// The operation failed as a whole (parse, validation, a limit…): the
    /// JSON array of its errors. Nothing follows.
    Error(Bytes),
    /// The subscriber fell behind and lost events: the result carrying the
    /// `SLOW_CONSUMER` error. The connection is closed after it.
    SlowConsumer(Bytes),
}

impl Executor {
    /// The current viewer behind a verified token, or the answer refusing
    /// it (revoked token, deactivated account, database down).
    pub async fn viewer_of(&self, subject: TokenSubject) -> Result<Viewer, Answer> {
        self.resolve(subject).await
    }

    /// Runs one operation for a long-lived connection: a subscription
    /// yields a result per event, a query or mutation one result. Limits
    /// and persisted documents apply as over HTTP; the response cache does
    /// not (every result is computed for this caller).
    pub async fn stream(
        &self,
        mut request: GqlRequest,
        viewer: Viewer,
        client: Option<IpAddr>,
    ) -> futures::stream::BoxStream<'static, Delivery> {
        use futures::StreamExt;
        let call = Call {
            viewer: Some(viewer),
            client,
            db: &self.db,
            over_get: false,
        };
        let failed = |answer: Answer| {
            futures::stream::once(async move { Delivery::Error(errors_array(&answer.body)) })
                .boxed()
        };
        if let Err(answer) = self.resolve_persisted(&mut request).await {
            return failed(answer);
        }
        let analysis = match self.prepare(&mut request, Caller::Authenticated) {
            Ok(analysis) => analysis,
            Err(answer) => return failed(answer),
        };
        if analysis.operation != Some(OperationType::Subscription) {
            let answer = self.execute(request, &analysis, call).await;
            return match answer.outcome {
                Outcome::Executed => {
                    futures::stream::once(async move { Delivery::Next(answer.body) }).boxed()
                }
                _ => failed(answer),
            };
        }
        let request = request.data(Session::new(self.db.clone(), Some(viewer), client));
        self.schemas
            .lean
            .execute_stream(request)
            .map(|mut response| {
                if failed_as_a_whole(&mut response) {
                    return Delivery::Error(
                        serde_json::to_vec(&response.errors)
                            .unwrap_or_default()
                            .into(),
                    );
                }
                for error in &mut response.errors {
                    tag(error, ErrorCode::BadUserInput);
                }
                let slow = first_code(&response.errors) == Some(ErrorCode::SlowConsumer);
                let body = response_body(&response);
                if slow {
                    Delivery::SlowConsumer(body)
                } else {
                    Delivery::Next(body)
                }
            })
            .boxed()
    }
}

/// A copy of a request before it runs: its text, parsed document,
/// variables and operation name (data is added per execution).
fn copy_request(request: &mut GqlRequest) -> GqlRequest {
    let mut copy = GqlRequest::new(request.query.clone()).variables(request.variables.clone());
    copy.operation_name = request.operation_name.clone();
    copy.extensions = request.extensions.clone();
    if let Ok(doc) = request.parsed_query() {
        let doc = doc.clone();
        copy.set_parsed_query(doc);
    }
    copy
}

/// Whether the response failed as a whole (validation, variable
/// coercion: errors with no path and no data); its errors are then tagged
/// `GRAPHQL_VALIDATION_FAILED`.
/// What async-graphql's validation depends on, besides the schema: the
/// document, the operation's name and the variables (argument values are
/// checked with them substituted).
fn validation_key(request: &GqlRequest) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(request.query.as_bytes());
    hasher.update(&[0]);
    if let Some(name) = &request.operation_name {
        hasher.update(name.as_bytes());
    }
    hasher.update(&[0]);
    if let Ok(variables) = serde_json::to_vec(&request.variables) {
        hasher.update(&variables);
    }
    hasher.digest128()
}

fn failed_as_a_whole(response: &mut GqlResponse) -> bool {
    let failed = !response.errors.is_empty()
        && response.data == async_graphql::Value::Null
        && response.errors.iter().all(|e| e.path.is_empty());
    if failed {
        for error in &mut response.errors {
            tag(error, ErrorCode::GraphqlValidationFailed);
        }
    }
    failed
}

/// The `errors` array of a `{"errors": […]}` body.
fn errors_array(body: &[u8]) -> Bytes {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("errors").map(std::mem::take))
        .and_then(|errors| serde_json::to_vec(&errors).ok())
        .unwrap_or_else(|| b"[]".to_vec())
        .into()
}

/// The `cache.refresh` task: recomputes a team's hot cached reads after
/// its writes, on the workers' pool.
pub struct RefreshHandler(pub Arc<Executor>);

impl TaskHandler for RefreshHandler {
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a db::entities::task::Model,
    ) -> futures::future::BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let team_id = id_field(task, "teamId")?;
            let refreshed = self.0.refresh_team(team_id, &ctx.db).await;
            tracing::debug!(team_id, refreshed, "hot reads refreshed in the cache");
            Ok(())
        })
    }
}

/// Names the request's operation in its span and its metrics.
fn name_operation(name: Option<&str>) {
    let name = name.unwrap_or("anonymous");
    tracing::Span::current().record("operation", name);
    telemetry::note_operation(name);
}

fn caller_of(viewer: Option<Viewer>) -> Caller {
    match viewer {
        Some(_) => Caller::Authenticated,
        None => Caller::Anonymous,
    }
}

/// The status an error forces on the whole answer, if any: a database
/// outage or overload is a 503, a rate limit a 429.
fn refusal_outcome(error: &ServerError) -> Option<Outcome> {
    let extensions = error.extensions.as_ref()?;
    let code = match extensions.get("code")? {
        async_graphql::Value::String(code) => code.as_str(),
        _ => return None,
    };
    let retry_after = || match extensions.get("retryAfter") {
        Some(async_graphql::Value::Number(n)) => n.as_u64().unwrap_or(1),
        _ => 1,
    };
    [ErrorCode::Unavailable, ErrorCode::Overloaded]
        .iter()
        .any(|c| c.as_str() == code)
        .then_some(Outcome::Unavailable)
        .or_else(|| {
            [ErrorCode::RateLimited, ErrorCode::QuotaExceeded]
                .iter()
                .any(|c| c.as_str() == code)
                .then(|| Outcome::Limited(retry_after()))
        })
}

fn outcome_code(outcome: Outcome) -> u16 {
    match outcome {
        Outcome::Executed => 200,
        Outcome::BadRequest | Outcome::ParseFailed => 400,
        Outcome::Invalid => 400,
        Outcome::Refused => 422,
        Outcome::MutationOverGet => 405,
        Outcome::Unavailable => 503,
        Outcome::Limited(_) => 429,
        Outcome::Unauthenticated => 401,
    }
}

fn code_outcome(code: u16) -> Outcome {
    match code {
        200 => Outcome::Executed,
        400 => Outcome::Invalid,
        405 => Outcome::MutationOverGet,
        503 => Outcome::Unavailable,
        429 => Outcome::Limited(1),
        401 => Outcome::Unauthenticated,
        _ => Outcome::Refused,
    }
}

fn refused(refusal: Refusal) -> Answer {
    let mut extensions = serde_json::Map::new();
    extensions.insert("code".into(), json!(refusal.code.as_str()));
    if let Some((limit, value)) = refusal.limit {
        extensions.insert("limit".into(), json!(limit));
        extensions.insert("value".into(), json!(value));
    }
    let body = json!({ "errors": [{ "message": refusal.message, "extensions": extensions }] });
    Answer::new(Outcome::Refused, body.to_string().into_bytes().into())
        .with_errors(1, Some(refusal.code))
}

fn response_body(response: &GqlResponse) -> Bytes {
    serde_json::to_vec(response).unwrap_or_default().into()
}

fn errors_body(errors: &[ServerError]) -> Bytes {
    json!({ "errors": errors }).to_string().into_bytes().into()
}

/// `{"errors":[{"message","extensions":{"code"}}]}`.
pub fn error_body(code: ErrorCode, message: &str) -> Bytes {
    json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] })
        .to_string()
        .into_bytes()
        .into()
}

/// The stable code of the first error (a bounded set: anything else is
/// counted as `INTERNAL`).
fn first_code(errors: &[ServerError]) -> Option<ErrorCode> {
    let first = errors.first()?;
    match first.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(async_graphql::Value::String(code)) => ErrorCode::known(code),
        _ => None,
    }
}

/// Gives an error a code unless it has one.
fn tag(error: &mut ServerError, code: ErrorCode) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code.as_str());
    }
}
