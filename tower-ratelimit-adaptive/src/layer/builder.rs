use std::sync::Arc;
use std::time::Duration;

use tower_layer::Layer;
use tower_ratelimit_core::concurrency::ConcurrencyLimiter;
use tower_ratelimit_core::RateLimiter;

use super::partition::{Partition, PartitionFn, Partitions, SinglePartition, Slot};
use super::service::AdaptiveRateLimit;
use crate::controller::{Controller, Goodput};

type MakeController = Arc<dyn Fn() -> Box<dyn Controller> + Send + Sync>;

pub(crate) struct Shared<K> {
    pub(crate) partitions: Partitions<K>,
    pub(crate) make: MakeController,
    pub(crate) manage_concurrency: bool,
    pub(crate) max_hold: Option<Duration>,
    pub(crate) learn_server_partitions: bool,
}

impl<K: std::hash::Hash + Eq + Clone> Shared<K> {
    pub(crate) fn slot(&self, key: &K) -> Arc<Slot> {
        self.partitions
            .get_or_insert(key, || Slot::new((self.make)(), self.manage_concurrency))
    }

    /// After a response to a request keyed `key` (served by `slot`): when it named a
    /// server partition and learning is on, `key` joins that partition's slot.
    pub(crate) fn learn(&self, key: &K, slot: &Arc<Slot>, outcome: &crate::Outcome) {
        if !self.learn_server_partitions {
            return;
        }
        if let Some(server) = outcome.hints().and_then(|h| h.partition) {
            self.partitions.learn(key, slot, server, || {
                Slot::new((self.make)(), self.manage_concurrency)
            });
        }
    }
}

/// Applies an adaptive rate limit (and optionally a concurrency cap) driven by the
/// classified results of the wrapped service. See the [module docs](super).
///
/// `Cl` classifies results; `P` chooses partitions. Clones of the layer, and every
/// service it makes, share the same partitions.
///
/// Put a timeout *inside* this layer (between it and the service): a timed-out call
/// then reaches the classifier as an error (an overload). Outside, a timeout cancels
/// the call before it is classified, and the controller never sees it.
pub struct AdaptiveRateLimitLayer<Cl, P: Partition<Req>, Req> {
    pub(crate) classify: Cl,
    pub(crate) partition: P,
    pub(crate) shared: Arc<Shared<P::Key>>,
}

impl<Cl: Clone, P: Partition<Req>, Req> Clone for AdaptiveRateLimitLayer<Cl, P, Req> {
    fn clone(&self) -> Self {
        AdaptiveRateLimitLayer {
            classify: self.classify.clone(),
            partition: self.partition.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<Cl, P: Partition<Req>, Req> std::fmt::Debug for AdaptiveRateLimitLayer<Cl, P, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdaptiveRateLimitLayer")
            .field("partitions", &self.shared.partitions.len())
            .field("manage_concurrency", &self.shared.manage_concurrency)
            .field("max_hold", &self.shared.max_hold)
            .finish()
    }
}

/// Default bound on the number of partitions.
pub const DEFAULT_MAX_PARTITIONS: usize = 1024;
/// Default cap on a Retry-After pause.
pub const DEFAULT_MAX_HOLD: Duration = Duration::from_secs(60);

fn default_make() -> MakeController {
    Arc::new(|| Box::new(Goodput::default()) as Box<dyn Controller>)
}

impl<Cl, Req> AdaptiveRateLimitLayer<Cl, SinglePartition, Req> {
    /// One partition, the default [`Goodput`] controller, Retry-After honoured up to
    /// 60 s, no concurrency cap; `classify` maps each result to an outcome.
    pub fn new(classify: Cl) -> Self {
        AdaptiveRateLimitLayer {
            classify,
            partition: SinglePartition,
            shared: Arc::new(Shared {
                partitions: Partitions::new(DEFAULT_MAX_PARTITIONS),
                make: default_make(),
                manage_concurrency: false,
                max_hold: Some(DEFAULT_MAX_HOLD),
                learn_server_partitions: false,
            }),
        }
    }
}

impl<Cl, P: Partition<Req>, Req> AdaptiveRateLimitLayer<Cl, P, Req> {
    fn rebuild<K>(&self, f: impl FnOnce(&Shared<P::Key>) -> Shared<K>) -> Arc<Shared<K>> {
        Arc::new(f(&self.shared))
    }

    /// Uses controllers built by `make` (one per partition). A controller that reports
    /// a concurrency cap ([`Gradient2`](crate::controller::Gradient2), which sets no
    /// rate) has it applied whether or not [`manage_concurrency`](Self::manage_concurrency)
    /// is on. Resets the partitions.
    pub fn controller<C, F>(self, make: F) -> Self
    where
        C: Controller,
        F: Fn() -> C + Send + Sync + 'static,
    {
        let make: MakeController = Arc::new(move || Box::new(make()) as Box<dyn Controller>);
        let shared = self.rebuild(|s| Shared {
            partitions: Partitions::new(s.partitions.max()),
            make,
            manage_concurrency: s.manage_concurrency,
            max_hold: s.max_hold,
            learn_server_partitions: s.learn_server_partitions,
        });
        AdaptiveRateLimitLayer { shared, ..self }
    }

    /// Partitions requests by `key(&req)`: each key gets its own controller and
    /// limiter (per host, per API key...). At most `max_partitions` keys are kept;
    /// further keys share one overflow partition (which [`rate`](Self::rate) and
    /// [`limiter`](Self::limiter) report for them): one controller and one limiter,
    /// whose holds reach all of those keys. A key no request used for a minute, and
    /// not held by a `Retry-After`, makes room for a new one (its controller's picture
    /// of the server is stale by then), so a crawler that meets more hosts over its
    /// life than it calls at once keeps one partition per host it is calling. Resets
    /// the partitions.
    pub fn partition_by<K, F>(
        self,
        key: F,
        max_partitions: usize,
    ) -> AdaptiveRateLimitLayer<Cl, PartitionFn<F>, Req>
    where
        F: Fn(&Req) -> K + Clone + Send + Sync + 'static,
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    {
        let shared = self.rebuild(|s| Shared {
            partitions: Partitions::new(max_partitions),
            make: s.make.clone(),
            manage_concurrency: s.manage_concurrency,
            max_hold: s.max_hold,
            learn_server_partitions: s.learn_server_partitions,
        });
        AdaptiveRateLimitLayer {
            classify: self.classify,
            partition: PartitionFn(key),
            shared,
        }
    }

    /// Also manages a concurrency limiter per partition, set from the controller's
    /// [`concurrency`](Controller::concurrency) (a controller that reports a cap has it
    /// applied anyway). Resets the partitions.
    pub fn manage_concurrency(self, on: bool) -> Self {
        let shared = self.rebuild(|s| Shared {
            partitions: Partitions::new(s.partitions.max()),
            make: s.make.clone(),
            manage_concurrency: on,
            max_hold: s.max_hold,
            learn_server_partitions: s.learn_server_partitions,
        });
        AdaptiveRateLimitLayer { shared, ..self }
    }

    /// Pauses a partition for a throttle's Retry-After, capped at `max`; `None`
    /// ignores Retry-After. Resets the partitions.
    pub fn honour_retry_after(self, max: Option<Duration>) -> Self {
        let shared = self.rebuild(|s| Shared {
            partitions: Partitions::new(s.partitions.max()),
            make: s.make.clone(),
            manage_concurrency: s.manage_concurrency,
            max_hold: max,
            learn_server_partitions: s.learn_server_partitions,
        });
        AdaptiveRateLimitLayer { shared, ..self }
    }

    /// Lets the server merge partitions: when responses to requests of different
    /// keys name the same server partition (the `pk` of the IETF RateLimit headers,
    /// a vendor's bucket; see [`Hints::partition`](crate::Hints::partition)), those
    /// keys share one controller and one limiter from then on, so that two hosts or
    /// API keys behind one server quota stop probing it independently. A key follows
    /// the partition its latest response named: requests of the key already waiting
    /// when it moves wait again in the partition's limiter, and its holds reach them.
    /// Keys must be at least as fine as the server's partitions (per host, per API
    /// key...): a coarser key (a single partition, a host whose server names a bucket
    /// per endpoint) follows whichever `pk` was named last, and starts a fresh
    /// controller, at the initial rate, for each one it has not seen. At most
    /// `max_partitions` server partitions are learnt. Resets the partitions.
    pub fn learn_server_partitions(self, on: bool) -> Self {
        let shared = self.rebuild(|s| Shared {
            partitions: Partitions::new(s.partitions.max()),
            make: s.make.clone(),
            manage_concurrency: s.manage_concurrency,
            max_hold: s.max_hold,
            learn_server_partitions: on,
        });
        AdaptiveRateLimitLayer { shared, ..self }
    }

    /// Number of server partitions learnt from responses so far.
    pub fn server_partitions(&self) -> usize {
        self.shared.partitions.server_len()
    }

    /// The rate set by the controller that paces requests keyed `key`: its own
    /// partition's, or, for a key past `max_partitions`, the overflow partition's.
    /// `None` when no request could yet have been paced for `key` (its partition, or
    /// the overflow partition, does not exist yet) or the controller sets no rate.
    /// Looking does not create a partition.
    pub fn rate(&self, key: &P::Key) -> Option<f64> {
        self.shared.partitions.get(key)?.rate()
    }

    /// The shared rate limiter that paces requests keyed `key` (pausing it holds
    /// them): its own partition's, or, for a key past `max_partitions`, the overflow
    /// partition's, which every such key shares. `None` until that partition exists;
    /// looking does not create it.
    pub fn limiter(&self, key: &P::Key) -> Option<RateLimiter> {
        Some(self.shared.partitions.get(key)?.limiter.clone())
    }

    /// The concurrency limiter of the partition serving `key` (the overflow
    /// partition's for a key past `max_partitions`), when concurrency is managed.
    /// `None` until that partition exists; looking does not create it.
    pub fn concurrency_limiter(&self, key: &P::Key) -> Option<ConcurrencyLimiter> {
        self.shared.partitions.get(key)?.concurrency.clone()
    }

    /// Number of partitions created so far (not counting the overflow partition).
    pub fn partitions(&self) -> usize {
        self.shared.partitions.len()
    }
}

impl<S, Cl: Clone, P: Partition<Req>, Req> Layer<S> for AdaptiveRateLimitLayer<Cl, P, Req> {
    type Service = AdaptiveRateLimit<S, Cl, P, Req>;

    fn layer(&self, inner: S) -> Self::Service {
        AdaptiveRateLimit::new(inner, self.clone())
    }
}
