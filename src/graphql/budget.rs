//! `MAX_RESPONSE_BYTES`: a query's answer is measured while it is built,
//! field by field, and the moment it passes the limit every further field
//! fails at once, so an answer too large to send is never built in full.
//! The estimate counts what the JSON will hold: keys, strings, numbers.
//! Mutations are not measured: their answers are bounded by their input,
//! and refusing one after its change committed would only mislead.

use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use crate::error::ErrorCode;
use async_graphql::{
    ErrorExtensions, ServerError, ServerResult, Value,
    extensions::{Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo},
};

/// One query's allowance, put into its request data.
pub struct ResponseBudget {
    max: usize,
    used: AtomicUsize,
    exceeded: AtomicBool,
}

impl ResponseBudget {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            used: AtomicUsize::new(0),
            exceeded: AtomicBool::new(false),
        }
    }

    /// Whether the answer grew past the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn spend(&self, bytes: usize) -> bool {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if used > self.max {
            self.exceeded.store(true, Ordering::Relaxed);
        }
        !self.exceeded()
    }

    fn error(&self) -> ServerError {
        let error = async_graphql::Error::new(format!(
            "the answer would be larger than {} bytes (MAX_RESPONSE_BYTES): ask for fewer items or fields",
            self.max
        ))
        .extend_with(|_, ext| ext.set("code", ErrorCode::ResponseTooLarge.as_str()));
        error.into_server_error(async_graphql::Pos::default())
    }
}

/// Measures resolved fields against the request's [`ResponseBudget`].
pub struct Measure {
    /// Object types: their values are counted field by field, not whole.
    objects: Arc<HashSet<String>>,
}

impl Measure {
    pub fn new(objects: impl IntoIterator<Item = String>) -> Self {
        Self {
            objects: Arc::new(objects.into_iter().collect()),
        }
    }
}

impl ExtensionFactory for Measure {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MeasureFields {
            objects: Arc::clone(&self.objects),
        })
    }
}

struct MeasureFields {
    objects: Arc<HashSet<String>>,
}

#[async_graphql::async_trait::async_trait]
impl Extension for MeasureFields {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let Some(budget) = ctx.data_opt::<Arc<ResponseBudget>>() else {
            return next.run(ctx, info).await;
        };
        if budget.exceeded() {
            return Err(budget.error());
        }
        let key = info.alias.unwrap_or(info.name).len() + 3;
        let base = info
            .return_type
            .trim_matches(|c| c == '[' || c == ']' || c == '!');
        let value = next.run(ctx, info).await?;
        let size = match &value {
            // Its fields were counted as they resolved.
            Some(_) if self.objects.contains(base) => key + 2,
            Some(v) => key + json_size(v),
            None => key + 4,
        };
        if budget.spend(size) {
            Ok(value)
        } else {
            Err(budget.error())
        }
    }
}

/// About how many bytes `value` takes as JSON.
fn json_size(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Boolean(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Enum(e) => e.len() + 2,
        Value::Binary(b) => b.len() * 4 / 3 + 4,
        Value::List(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}
