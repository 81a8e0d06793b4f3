//! Cache metrics: hits, misses, errors, bypasses and coalesced misses per
//! kind, the hit rate per kind, invalidations and background clearing.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::{ConstGauge, Gauge},
    },
    registry::Registry,
};

use super::CacheKind;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabel {
    pub namespace: &'static str,
}

/// Counters the cache updates; registered once per application.
#[derive(Clone, Debug, Default)]
pub struct CacheMetrics {
    pub hits: Family<KindLabel, Counter>,
    pub misses: Family<KindLabel, Counter>,
    pub errors: Family<KindLabel, Counter>,
    pub bypasses: Family<KindLabel, Counter>,
    pub coalesced: Family<KindLabel, Counter>,
    /// Generation bumps by namespace (`jobs`, `job`, `users`, `logs`,
    /// `resumes`).
    pub invalidations: Family<NamespaceLabel, Counter>,
    pub sweeps: Counter,
    pub sweep_failures: Counter,
    pub keys_removed: Counter,
    /// 1 while the store does not answer or an invalidation waits to be
    /// applied: requests are then served from the database.
    pub degraded: Gauge,
    /// Clearing passes announced by writes and not yet run.
    pub sweeps_pending: Gauge,
}

fn label(kind: CacheKind) -> KindLabel {
    KindLabel { kind: kind.label() }
}

impl CacheMetrics {
    pub fn hit(&self, kind: CacheKind) {
        self.hits.get_or_create(&label(kind)).inc();
    }

    pub fn miss(&self, kind: CacheKind) {
        self.misses.get_or_create(&label(kind)).inc();
    }

    pub fn error(&self, kind: CacheKind) {
        self.errors.get_or_create(&label(kind)).inc();
    }

    pub fn bypass(&self, kind: CacheKind) {
        self.bypasses.get_or_create(&label(kind)).inc();
    }

    pub fn coalesced(&self, kind: CacheKind) {
        self.coalesced.get_or_create(&label(kind)).inc();
    }

    pub fn register(&self, registry: &mut Registry) {
        // Every kind's series exist from the start (at 0): a rate over a
        // series that does not exist yet is no data, not zero, and alerts
        // and dashboards would stay blank.
        for kind in CacheKind::ALL {
            let l = label(kind);
            let _ = self.hits.get_or_create(&l);
            let _ = self.misses.get_or_create(&l);
            let _ = self.errors.get_or_create(&l);
            let _ = self.bypasses.get_or_create(&l);
            let _ = self.coalesced.get_or_create(&l);
        }
        registry.register(
            "cache_hits",
            "Responses served from the cache",
            self.hits.clone(),
        );
        registry.register(
            "cache_misses",
            "Cacheable requests that ran their resolvers",
            self.misses.clone(),
        );
        registry.register(
            "cache_errors",
            "Cache commands that failed or timed out (served from the database)",
            self.errors.clone(),
        );
        registry.register(
            "cache_bypasses",
            "Cacheable requests not looked up (cache off or invalidation pending)",
            self.bypasses.clone(),
        );
        registry.register(
            "cache_coalesced",
            "Misses that shared another request's execution",
            self.coalesced.clone(),
        );
        registry.register(
            "cache_invalidations",
            "Namespace generations bumped by writes",
            self.invalidations.clone(),
        );
        registry.register(
            "cache_sweeps",
            "Background clearing passes",
            self.sweeps.clone(),
        );
        registry.register(
            "cache_sweep_failures",
            "Background clearing passes that failed",
            self.sweep_failures.clone(),
        );
        registry.register(
            "cache_keys_removed",
            "Keys deleted by background clearing",
            self.keys_removed.clone(),
        );
        registry.register(
            "cache_sweeps_pending",
            "Clearing passes announced by writes and not yet run",
            self.sweeps_pending.clone(),
        );
        registry.register(
            "cache_degraded",
            "1 while the cache cannot be used (store unreachable or invalidations pending)",
            self.degraded.clone(),
        );
        registry.register_collector(Box::new(HitRate(self.clone())));
    }
}

/// `jobgraph_cache_hit_rate{kind}`: hits / (hits + misses), computed at scrape.
#[derive(Debug)]
struct HitRate(CacheMetrics);

impl Collector for HitRate {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "cache_hit_rate",
            "Share of cacheable lookups answered from the cache, per kind",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for kind in CacheKind::ALL {
            let l = label(kind);
            let hits = self.0.hits.get_or_create(&l).get() as f64;
            let misses = self.0.misses.get_or_create(&l).get() as f64;
            let rate = if hits + misses > 0.0 {
                hits / (hits + misses)
            } else {
                0.0
            };
            ConstGauge::new(rate).encode(metric.encode_family(&l)?)?;
        }
        Ok(())
    }
}
