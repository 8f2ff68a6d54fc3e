//! The strategies built from tower-ratelimit's layers.

use tower::BoxError;

use super::{RunConfig, Tally};

pub(super) async fn token_bucket(_config: &RunConfig, _tally: &mut Tally) -> Result<(), BoxError> {
    Err("not available yet".into())
}

pub(super) async fn leaky_bucket(_config: &RunConfig, _tally: &mut Tally) -> Result<(), BoxError> {
    Err("not available yet".into())
}

pub(super) async fn sliding_window(_config: &RunConfig, _tally: &mut Tally) -> Result<(), BoxError> {
    Err("not available yet".into())
}

pub(super) async fn adaptive(_config: &RunConfig, _tally: &mut Tally, _feedback: bool) -> Result<(), BoxError> {
    Err("not available yet".into())
}
