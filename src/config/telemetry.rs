//! `OTEL_*` and `SLOW_QUERY_MS`: traces, their sampling, and the
//! slow-statement log. Traces are off unless an OTLP endpoint is set.

use std::time::Duration;

use anyhow::bail;

use super::env::{Env, parse_range};

/// How traces are sampled (`OTEL_TRACES_SAMPLER`, with `OTEL_TRACES_SAMPLER_ARG`
/// the ratio where one is taken).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampler {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    /// Follows the caller's decision when a `traceparent` came in; else the
    /// inner sampler decides.
    ParentBased(Root),
}

/// The decision of [`Sampler::ParentBased`] for a trace that starts here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Root {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
}

/// What and where to trace.
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as given) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended): where spans
    /// go over OTLP/HTTP with protobuf. Unset: no traces.
    pub traces_endpoint: Option<String>,
    /// `OTEL_SERVICE_NAME` (default `jobgraph`).
    pub service_name: String,
    /// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default
    /// `parentbased_always_on`).
    pub sampler: Sampler,
    /// `SLOW_QUERY_MS`: a statement slower than this is logged at WARN
    /// (default 100; 0 logs every statement).
    pub slow_query: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            traces_endpoint: None,
            service_name: "jobgraph".to_owned(),
            sampler: Sampler::ParentBased(Root::AlwaysOn),
            slow_query: Duration::from_millis(100),
        }
    }
}

impl TelemetrySettings {
    pub(super) fn read(&mut self, env: &Env) -> anyhow::Result<()> {
        self.traces_endpoint = match (
            env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            env.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => Some(url),
            (None, Some(base)) => Some(format!("{}/v1/traces", base.trim_end_matches('/'))),
            (None, None) => None,
        };
        if let Some(url) = &self.traces_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// or https:// URL, not `{url}`");
        }
        let protocol = env
            .get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| env.get("OTEL_EXPORTER_OTLP_PROTOCOL"));
        match protocol.as_deref() {
            None | Some("http/protobuf") => {}
            Some(other) => bail!(
                "OTEL_EXPORTER_OTLP_PROTOCOL `{other}` is not supported: jobgraph exports \
                 `http/protobuf` (every OpenTelemetry collector accepts it on port 4318)"
            ),
        }
        if let Some(name) = env.get("OTEL_SERVICE_NAME") {
            self.service_name = name;
        }
        let arg = |default: f64| -> anyhow::Result<f64> {
            match env.get("OTEL_TRACES_SAMPLER_ARG") {
                Some(v) => parse_range("OTEL_TRACES_SAMPLER_ARG", &v, 0.0, 1.0),
                None => Ok(default),
            }
        };
        if let Some(sampler) = env.get("OTEL_TRACES_SAMPLER") {
            self.sampler = match sampler.trim() {
                "always_on" => Sampler::AlwaysOn,
                "always_off" => Sampler::AlwaysOff,
                "traceidratio" => Sampler::Ratio(arg(1.0)?),
                "parentbased_always_on" => Sampler::ParentBased(Root::AlwaysOn),
                "parentbased_always_off" => Sampler::ParentBased(Root::AlwaysOff),
                "parentbased_traceidratio" => Sampler::ParentBased(Root::Ratio(arg(1.0)?)),
                other => bail!(
                    "OTEL_TRACES_SAMPLER `{other}` is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                ),
            };
        }
        if let Some(d) = env.millis("SLOW_QUERY_MS", 0, 3_600_000)? {
            self.slow_query = d;
        }
        Ok(())
    }

    /// Whether spans are exported at all.
    pub fn tracing(&self) -> bool {
        self.traces_endpoint.is_some()
    }
}
