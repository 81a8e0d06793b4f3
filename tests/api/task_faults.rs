//! Background work that cannot wedge: a handler that panics or hangs fails
//! that attempt and its worker goes on; a task ends after `max_attempts`
//! whatever killed it; a retry that meets a newer queued duplicate merges.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use crate::common::TestApp;
use futures::future::BoxFuture;
use jobgraph::{
    db::{entities::task, queue::NewTask},
    tasks::{Failure, Handlers, TaskContext, TaskHandler},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

struct Panics;

impl TaskHandler for Panics {
    fn run<'a>(
        &'a self,
        _: &'a TaskContext,
        _: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async { panic!("a bug in a handler") })
    }
}

struct Hangs;

impl TaskHandler for Hangs {
    fn run<'a>(
        &'a self,
        _: &'a TaskContext,
        _: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(std::future::pending())
    }
}

/// Keeps its thread busy (never yields) until released.
struct Blocks(Arc<std::sync::atomic::AtomicBool>);

impl TaskHandler for Blocks {
    fn run<'a>(
        &'a self,
        _: &'a TaskContext,
        _: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            while !self.0.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(())
        })
    }
}

/// Fails its first attempt after a newer duplicate was queued meanwhile.
struct DuplicatedWhileRunning(Arc<AtomicUsize>);

impl TaskHandler for DuplicatedWhileRunning {
    fn run<'a>(
        &'a self,
        ctx: &'a TaskContext,
        task: &'a task::Model,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
                let again = NewTask::new("test.dedup", json!({})).dedup("test.dedup:1");
                jobgraph::db::queue::enqueue(&ctx.db, &[again])
                    .await
                    .unwrap();
                let _ = task;
                return Err(Failure::Retry {
                    message: "first attempt fails".into(),
                    after: Some(Duration::from_millis(10)),
                });
            }
            Ok(())
        })
    }
}

fn handlers(list: Vec<(&'static str, Arc<dyn TaskHandler>)>) -> Handlers {
    list.into_iter().collect()
}

async fn enqueue(app: &TestApp, task: NewTask) {
    jobgraph::db::queue::enqueue(app.state.db(), &[task])
        .await
        .unwrap();
}

async fn tasks_of(app: &TestApp, kind: &str) -> Vec<task::Model> {
    task::Entity::find()
        .filter(task::Column::Kind.eq(kind))
        .all(app.state.db())
        .await
        .unwrap()
}

/// A job creation's refresh runs after the broken task, on the same worker.
async fn worker_still_serves(app: &TestApp, token: &str) {
    app.create_jobs(token, "After", 1).await;
    app.eventually(15, "the worker to run the next task", || async {
        tasks_of(app, "cache.refresh")
            .await
            .iter()
            .any(|t| t.status == "done")
    })
    .await;
}

#[tokio::test]
async fn a_panicking_handler_fails_its_attempt_and_the_worker_keeps_serving() {
    let app = TestApp::spawn_with_handlers(
        |c| c.tasks.concurrency = 1,
        handlers(vec![("test.panic", Arc::new(Panics))]),
    )
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    enqueue(
        &app,
        NewTask {
            max_attempts: 2,
            ..NewTask::new("test.panic", json!({}))
        },
    )
    .await;
    app.eventually(15, "the panicking task to fail for good", || async {
        tasks_of(&app, "test.panic")
            .await
            .first()
            .is_some_and(|t| t.status == "failed")
    })
    .await;
    let failed = tasks_of(&app, "test.panic").await.remove(0);
    assert_eq!(failed.attempts, 2);
    assert!(
        failed
            .last_error
            .unwrap()
            .contains("panicked: a bug in a handler")
    );
    worker_still_serves(&app, &token).await;
}

#[tokio::test]
async fn a_hanging_handler_times_out_and_the_worker_keeps_serving() {
    let app = TestApp::spawn_with_handlers(
        |c| {
            c.tasks.concurrency = 1;
            c.tasks.lease = Duration::from_secs(1);
        },
        handlers(vec![("test.hang", Arc::new(Hangs))]),
    )
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    enqueue(
        &app,
        NewTask {
            max_attempts: 2,
            ..NewTask::new("test.hang", json!({}))
        },
    )
    .await;
    app.eventually(15, "the hanging task to fail for good", || async {
        tasks_of(&app, "test.hang")
            .await
            .first()
            .is_some_and(|t| t.status == "failed")
    })
    .await;
    let failed = tasks_of(&app, "test.hang").await.remove(0);
    assert!(failed.last_error.unwrap().contains("timed out"));
    worker_still_serves(&app, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_never_yields_its_thread_does_not_stop_its_worker() {
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = TestApp::spawn_with_handlers(
        |c| {
            c.tasks.concurrency = 1;
            c.tasks.lease = Duration::from_secs(1);
        },
        handlers(vec![("test.block", Arc::new(Blocks(Arc::clone(&release))))]),
    )
    .await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    enqueue(
        &app,
        NewTask {
            max_attempts: 1,
            ..NewTask::new("test.block", json!({}))
        },
    )
    .await;
    app.eventually(15, "the blocked attempt to be given up", || async {
        tasks_of(&app, "test.block")
            .await
            .first()
            .is_some_and(|t| t.status == "failed")
    })
    .await;
    // The only worker serves the next task while the handler still holds
    // its thread.
    worker_still_serves(&app, &token).await;
    release.store(true, Ordering::SeqCst);
}

#[tokio::test]
async fn a_task_whose_lease_ran_out_on_its_last_attempt_fails_for_good() {
    let app = TestApp::spawn().await;
    let (token, _) = app.signup("Acme", "ada@example.com").await;
    let job = app.create_jobs(&token, "Job", 1).await.remove(0);
    // A resume whose generation killed its worker three times: the row is
    // still `running`, its lease long gone, every attempt used.
    let data = app
        .ok(
            &token,
            "mutation($id: ID!) { generateResume(jobId: $id) { id } }",
            json!({ "id": job }),
        )
        .await;
    let resume_id = data["generateResume"]["id"].clone();
    let resume_row = jobgraph::graphql::ids::decode(
        jobgraph::graphql::ids::Kind::Resume,
        &resume_id.as_str().unwrap().into(),
        "id",
    )
    .unwrap();
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let stuck = task::ActiveModel {
        kind: Set("resume.generate".into()),
        payload: Set(json!({ "resumeId": resume_row })),
        status: Set("running".into()),
        attempts: Set(3),
        max_attempts: Set(3),
        run_at: Set(jobgraph::db::now()),
        locked_by: Set(Some("a-dead-worker".into())),
        locked_until: Set(Some(jobgraph::db::now() - chrono::Duration::minutes(10))),
        created_at: Set(jobgraph::db::now()),
        updated_at: Set(jobgraph::db::now()),
        ..Default::default()
    }
    .insert(app.state.db())
    .await
    .unwrap();
    app.eventually(15, "the exhausted task to fail for good", || async {
        task::Entity::find_by_id(stuck.id)
            .one(app.state.db())
            .await
            .unwrap()
            .is_some_and(|t| t.status == "failed")
    })
    .await;
    let row = task::Entity::find_by_id(stuck.id)
        .one(app.state.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.attempts, 3, "it was not run a fourth time");
    assert!(row.last_error.unwrap().contains("lease expired"));
}

#[tokio::test]
async fn a_retry_that_meets_a_newer_queued_duplicate_is_merged_not_stuck() {
    let runs = Arc::new(AtomicUsize::new(0));
    let app = TestApp::spawn_with_handlers(
        |c| c.tasks.concurrency = 1,
        handlers(vec![(
            "test.dedup",
            Arc::new(DuplicatedWhileRunning(Arc::clone(&runs))),
        )]),
    )
    .await;
    enqueue(
        &app,
        NewTask::new("test.dedup", json!({})).dedup("test.dedup:1"),
    )
    .await;
    app.eventually(15, "both tasks to finish", || async {
        let all = tasks_of(&app, "test.dedup").await;
        all.len() == 2 && all.iter().all(|t| t.status == "done")
    })
    .await;
    let all = tasks_of(&app, "test.dedup").await;
    let merged = all
        .iter()
        .find(|t| t.attempts == 1 && t.last_error.is_some())
        .unwrap();
    assert!(
        merged.last_error.as_deref().unwrap().contains("merged"),
        "{all:?}"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
