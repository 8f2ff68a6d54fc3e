//! How many units a request takes.

/// The cost of a request in units of the quota (bytes, tokens, query cost...).
///
/// Closures `Fn(&Req) -> u64` implement it.
///
/// ```
/// use tower_ratelimit_core::rate::{Cost, UnitCost};
///
/// let by_len = |body: &Vec<u8>| body.len() as u64;
/// assert_eq!(by_len.cost(&vec![0; 3]), 3);
/// assert_eq!(UnitCost.cost(&vec![0; 3]), 1);
/// ```
pub trait Cost<Req> {
    /// Whether a request may cost more than one unit. A wait-mode layer then notes
    /// when readiness took its unit, so that `call` can give back that unit and book
    /// the whole cost (see [`crate::store::RateStore::reserve_whole`]); `false` spares
    /// [`UnitCost`] layers that clock read.
    const WEIGHTED: bool = true;

    /// Units taken by `request`.
    fn cost(&self, request: &Req) -> u64;
}

/// Every request costs one unit (the default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitCost;

impl<Req> Cost<Req> for UnitCost {
    const WEIGHTED: bool = false;

    #[inline]
    fn cost(&self, _request: &Req) -> u64 {
        1
    }
}

impl<Req, F> Cost<Req> for F
where
    F: Fn(&Req) -> u64,
{
    fn cost(&self, request: &Req) -> u64 {
        self(request)
    }
}
