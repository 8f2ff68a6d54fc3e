use crate::algorithm::sync::{lock, Mutex};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// A shared, resizable cap on requests in flight. Cheap to clone; clones share the cap.
///
/// Built on tokio's FIFO semaphore. Growing adds permits at once. Shrinking never
/// revokes a permit in use: it removes idle permits, and the shortfall is paid back
/// by permits as they are released, so new requests are held back until the count is
/// under the new limit.
#[derive(Clone)]
pub struct ConcurrencyLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    semaphore: Arc<Semaphore>,
    limit: AtomicUsize,
    /// Permits to destroy as they come back, after a shrink found them in use.
    debt: AtomicUsize,
    resize: Mutex<()>,
}

/// The right to have one request in flight; released on drop.
pub struct ConcurrencyPermit {
    // The semaphore's permit is forgotten when taken and given back on drop, so the
    // permit holds one Arc (the limiter's), not two.
    limiter: Arc<Inner>,
}

pub(crate) type AcquireFuture =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

impl ConcurrencyLimiter {
    /// At most `limit` in flight. A limit of 0 holds every request until it is raised;
    /// limits above tokio's maximum (`usize::MAX >> 3`) are clamped to it.
    pub fn new(limit: usize) -> Self {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        ConcurrencyLimiter {
            inner: Arc::new(Inner {
                semaphore: Arc::new(Semaphore::new(limit)),
                limit: AtomicUsize::new(limit),
                debt: AtomicUsize::new(0),
                resize: Mutex::new(()),
            }),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.inner.limit.load(Ordering::Acquire)
    }

    /// Requests in flight now (permits held). May briefly exceed a just-lowered limit:
    /// shrinking never revokes a permit in use.
    pub fn in_flight(&self) -> usize {
        // Permits in existence are the limit plus the debt; those not available are
        // held. Read without a lock, so exact only when no resize races it.
        let limit = self.inner.limit.load(Ordering::Acquire);
        let debt = self.inner.debt.load(Ordering::Acquire);
        (limit + debt).saturating_sub(self.inner.semaphore.available_permits())
    }

    /// Changes the limit. Growing wakes waiters at once; shrinking holds new requests
    /// back until the count is under the new limit.
    pub fn set_limit(&self, limit: usize) {
        let limit = limit.min(Semaphore::MAX_PERMITS);
        let _guard = lock(&self.inner.resize);
        let old = self.inner.limit.swap(limit, Ordering::AcqRel);
        if limit > old {
            let mut grow = limit - old;
            // Cancel outstanding debt before adding permits.
            let _ = self
                .inner
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                    let paid = debt.min(grow);
                    grow = limit - old - paid;
                    Some(debt - paid)
                });
            self.inner.semaphore.add_permits(grow);
        } else if limit < old {
            let shrink = old - limit;
            let removed = self.inner.semaphore.forget_permits(shrink);
            self.inner
                .debt
                .fetch_add(shrink - removed, Ordering::AcqRel);
        }
    }

    /// Takes a permit without waiting, if one is free and nobody is queued.
    pub fn try_acquire(&self) -> Option<ConcurrencyPermit> {
        loop {
            self.inner.semaphore.try_acquire().ok()?.forget();
            // A permit that a drop gave back while a shrink was putting its debt on
            // the books is owed to that debt: taking it pays the debt, not a request
            // (the drop read the debt before the shrink wrote it).
            if !self.inner.pay_debt() {
                break;
            }
        }
        Some(ConcurrencyPermit {
            limiter: Arc::clone(&self.inner),
        })
    }

    /// Waits for a permit, in FIFO order.
    pub async fn acquire(&self) -> ConcurrencyPermit {
        loop {
            match self.inner.semaphore.clone().acquire_owned().await {
                Ok(permit) => {
                    if let Some(permit) = self.wrap(permit) {
                        return permit;
                    }
                }
                // The semaphore is never closed.
                Err(_) => unreachable!("the concurrency semaphore is never closed"),
            }
        }
    }

    pub(crate) fn acquire_future(&self) -> AcquireFuture {
        Box::pin(self.inner.semaphore.clone().acquire_owned())
    }

    /// The permit as the caller's, or `None` when it went to a debt a shrink left
    /// owed (a drop gave it back while the shrink ran); the caller acquires again.
    pub(crate) fn wrap(&self, permit: OwnedSemaphorePermit) -> Option<ConcurrencyPermit> {
        permit.forget();
        (!self.inner.pay_debt()).then(|| ConcurrencyPermit {
            limiter: Arc::clone(&self.inner),
        })
    }
}

impl Inner {
    /// Pays one unit of debt, if any is owed.
    fn pay_debt(&self) -> bool {
        self.debt.load(Ordering::Acquire) > 0
            && self
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
                .is_ok()
    }
}

impl Drop for ConcurrencyPermit {
    fn drop(&mut self) {
        // A load first: the debt is almost always zero, and then no write is needed.
        let paid = self.limiter.debt.load(Ordering::Acquire) > 0
            && self
                .limiter
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |debt| {
                    debt.checked_sub(1)
                })
                .is_ok();
        if !paid {
            self.limiter.semaphore.add_permits(1);
        }
    }
}

impl fmt::Debug for ConcurrencyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyLimiter")
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl fmt::Debug for ConcurrencyPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrencyPermit").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrink_never_revokes_and_holds_new_ones_back() {
        let pool = ConcurrencyLimiter::new(3);
        let held: Vec<_> = (0..3).map(|_| pool.try_acquire().unwrap()).collect();
        pool.set_limit(1);
        assert_eq!(pool.in_flight(), 3);
        assert!(pool.try_acquire().is_none());
        drop(held);
        assert_eq!(pool.in_flight(), 0);
        let one = pool.try_acquire().unwrap();
        assert!(pool.try_acquire().is_none(), "limit 1 must hold");
        drop(one);
        pool.set_limit(4);
        let four: Vec<_> = (0..4).map(|_| pool.try_acquire().unwrap()).collect();
        assert!(pool.try_acquire().is_none());
        assert_eq!(four.len(), 4);
    }

    #[tokio::test]
    async fn grow_pays_debt_first() {
        let pool = ConcurrencyLimiter::new(2);
        let a = pool.try_acquire().unwrap();
        let b = pool.try_acquire().unwrap();
        pool.set_limit(0); // debt of 2
        pool.set_limit(1); // pays one debt, adds nothing
        assert!(pool.try_acquire().is_none());
        drop(a); // pays the last debt
        assert!(pool.try_acquire().is_none());
        drop(b); // returns a permit: limit 1
        let c = pool.try_acquire().unwrap();
        assert!(pool.try_acquire().is_none());
        drop(c);
    }
}
