//! [`RetryPolicy`]: a `tower::retry::Policy` that honours what the server said.

use super::backoff::{jitter, Backoff};
use super::idempotency::Idempotency;
use crate::feedback::{Class, Classify, DefaultClassifier, Feedback, FeedbackParser, WaitOverCap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::Policy;
use tower_ratelimit_core::error::{BoxError, CostTooLarge, RateLimited, WaitTooLong};

/// Retries throttled and transient responses:
///
/// * a throttled response (429, 503 with a wait, ...) is retried whatever its method
///   (the server did not act on it), after the wait the server named (within the
///   parser's cap; a wait over the cap is not retried) plus a little jitter;
/// * a transient failure (502, 503 without a wait, a transport error) is retried only
///   when [`Idempotency`] allows it, after the server's wait or else exponential
///   backoff with full jitter;
/// * a request a reject-mode limiter refused locally
///   ([`RateLimited`](tower_ratelimit_core::RateLimited): nothing was sent) is retried
///   after its `retry_after`, within the same cap;
/// * an explicit do-not-retry (`x-should-retry: false`, `Stripe-Should-Retry:
///   false`, a negative gRPC pushback) stops;
/// * every retry is withdrawn from a shared [`Budget`] (by default tower's
///   [`TpsBudget`]: 20 % of recent requests plus 10 per second), and at most
///   `max_retries` are made per request.
///
/// Put the `RetryLayer` *outside* the rate limit layer: each retry then goes back
/// through the limiter (and its pause), never around it.
pub struct RetryPolicy<C = DefaultClassifier, Bu = TpsBudget> {
    parser: FeedbackParser,
    classifier: Arc<C>,
    budget: Arc<Bu>,
    backoff: Backoff,
    idempotency: Idempotency,
    max_retries: u32,
    attempt: u32,
}

impl<C, Bu> Clone for RetryPolicy<C, Bu> {
    fn clone(&self) -> Self {
        RetryPolicy {
            parser: self.parser,
            classifier: Arc::clone(&self.classifier),
            budget: Arc::clone(&self.budget),
            backoff: self.backoff,
            idempotency: self.idempotency,
            max_retries: self.max_retries,
            attempt: self.attempt,
        }
    }
}

impl<C, Bu> std::fmt::Debug for RetryPolicy<C, Bu> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("parser", &self.parser)
            .field("backoff", &self.backoff)
            .field("idempotency", &self.idempotency)
            .field("max_retries", &self.max_retries)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::new()
    }
}

impl RetryPolicy {
    /// Default number of retries per request: 5.
    pub const DEFAULT_MAX_RETRIES: u32 = 5;

    /// The default policy: default parser and classifier, [`Backoff::default`],
    /// [`Idempotency::Standard`], a `TpsBudget` of 10 s / 10 per second / 20 %.
    pub fn new() -> Self {
        RetryPolicy {
            parser: FeedbackParser::new(),
            classifier: Arc::new(DefaultClassifier),
            budget: Arc::new(TpsBudget::new(Duration::from_secs(10), 10, 0.2)),
            backoff: Backoff::default(),
            idempotency: Idempotency::Standard,
            max_retries: Self::DEFAULT_MAX_RETRIES,
            attempt: 0,
        }
    }
}

impl<C, Bu> RetryPolicy<C, Bu> {
    /// Replaces the parser used when a response carries no parsed feedback (the
    /// feedback layer puts its own in the response's extensions).
    pub fn parser(mut self, parser: FeedbackParser) -> Self {
        self.parser = parser;
        self
    }

    /// Replaces the classifier, for responses no feedback layer classified: behind a
    /// [`FeedbackLayer`](crate::FeedbackLayer) (or the reqwest middleware), the class
    /// it put in the response's extensions is used, so give your rules to
    /// `FeedbackLayer::classifier` there.
    pub fn classifier<C2: Classify>(self, classifier: C2) -> RetryPolicy<C2, Bu> {
        RetryPolicy {
            parser: self.parser,
            classifier: Arc::new(classifier),
            budget: self.budget,
            backoff: self.backoff,
            idempotency: self.idempotency,
            max_retries: self.max_retries,
            attempt: self.attempt,
        }
    }

    /// Replaces the retry budget (shared by every clone of this policy).
    pub fn budget<Bu2: Budget>(self, budget: Bu2) -> RetryPolicy<C, Bu2> {
        RetryPolicy {
            parser: self.parser,
            classifier: self.classifier,
            budget: Arc::new(budget),
            backoff: self.backoff,
            idempotency: self.idempotency,
            max_retries: self.max_retries,
            attempt: self.attempt,
        }
    }

    /// Replaces the backoff used when the server names no wait.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Which requests may be retried after a transient failure.
    pub fn idempotency(mut self, idempotency: Idempotency) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// The most retries per request.
    pub fn max_retries(mut self, max: u32) -> Self {
        self.max_retries = max;
        self
    }

    /// The server's wait plus up to 10 % (at most 1 s) of jitter, so clones told the
    /// same instant do not all return at once; never past the cap.
    fn server_wait(&self, wait: Duration) -> Duration {
        let spread = jitter((wait / 10).min(Duration::from_secs(1)));
        wait.saturating_add(spread)
            .min(self.parser.get_max_wait().max(wait))
    }
}

impl<C: Classify, Bu: Budget> RetryPolicy<C, Bu> {
    /// Reads a response's feedback and class: the feedback layer's, when it put them
    /// in the extensions, else parsed here.
    fn judge(
        &self,
        response_status: http::StatusCode,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> (Feedback, Class) {
        let feedback = match extensions.get::<Feedback>() {
            Some(feedback) => feedback.clone(),
            None => self
                .parser
                .parse(response_status, headers, SystemTime::now()),
        };
        let class = extensions
            .get::<Class>()
            .copied()
            .unwrap_or_else(|| self.classifier.classify(&feedback));
        (feedback, class)
    }

    /// How long to wait before retrying after a response, or `None` to stop.
    fn decide_response(
        &self,
        may_repeat: bool,
        feedback: &Feedback,
        class: Class,
    ) -> Option<Duration> {
        if self.attempt >= self.max_retries || feedback.do_not_retry {
            return None;
        }
        match class {
            Class::Throttled => {}
            Class::Transient if may_repeat => {}
            // The server vouches that repeating this request is safe and useful
            // (`x-should-retry: true`, `Stripe-Should-Retry: true`), whatever its method.
            Class::Transient | Class::Failure if feedback.should_retry == Some(true) => {}
            _ => return None,
        }
        match feedback.wait() {
            Ok(Some(wait)) => Some(self.server_wait(wait)),
            // A throttle that names no wait gets at least the floor a named
            // `Retry-After: 0` gets; full jitter alone retried it after a few ms.
            Ok(None) if class == Class::Throttled => Some(
                self.backoff
                    .delay(self.attempt)
                    .max(self.parser.get_min_wait()),
            ),
            Ok(None) => Some(self.backoff.delay(self.attempt)),
            Err(_) => None,
        }
    }

    /// How long to wait before retrying after an error, or `None` to stop.
    fn decide_error(
        &self,
        may_repeat: bool,
        error: &(dyn std::error::Error + 'static),
    ) -> Option<Duration> {
        if self.attempt >= self.max_retries
            || error.is::<WaitOverCap>()
            || error.is::<CostTooLarge>()
            || error.is::<WaitTooLong>()
        {
            return None;
        }
        if let Some(denied) = error.downcast_ref::<RateLimited>() {
            // Denied locally in reject mode: nothing was sent.
            // Within the parser's cap, as a server's wait is: a local quota of one
            // per hour must not hold the caller an hour before it hears anything.
            let wait = denied.retry_after();
            return (wait <= self.parser.get_max_wait()).then_some(wait);
        }
        // A transport failure: the server may or may not have seen the request.
        may_repeat.then(|| self.backoff.delay(self.attempt))
    }

    /// Spends the budget on a retry: each request deposits once, each retry withdraws.
    fn account(&mut self, wait: Option<Duration>) -> Option<Duration> {
        if self.attempt == 0 {
            self.budget.deposit();
        }
        let wait = wait?;
        if !self.budget.withdraw() {
            return None;
        }
        self.attempt += 1;
        Some(wait)
    }

    /// After a response to a request of `method` with `headers`: the wait before the
    /// next attempt, or `None` to stop. Counts the attempt and spends the budget.
    pub(crate) fn after_response(
        &mut self,
        method: &http::Method,
        request_headers: &http::HeaderMap,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Option<Duration> {
        let (feedback, class) = self.judge(status, headers, extensions);
        let may_repeat = self.idempotency.allows_parts(method, request_headers);
        let wait = self.decide_response(may_repeat, &feedback, class);
        self.account(wait)
    }

    /// After an error: as [`RetryPolicy::after_response`].
    pub(crate) fn after_error(
        &mut self,
        method: &http::Method,
        request_headers: &http::HeaderMap,
        error: &(dyn std::error::Error + 'static),
    ) -> Option<Duration> {
        let may_repeat = self.idempotency.allows_parts(method, request_headers);
        let wait = self.decide_error(may_repeat, error);
        self.account(wait)
    }
}

impl<C, Bu, B, R> Policy<http::Request<B>, http::Response<R>, BoxError> for RetryPolicy<C, Bu>
where
    C: Classify,
    Bu: Budget,
    B: Clone,
{
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        request: &mut http::Request<B>,
        result: &mut Result<http::Response<R>, BoxError>,
    ) -> Option<Self::Future> {
        let wait = match result {
            Ok(response) => self.after_response(
                request.method(),
                request.headers(),
                response.status(),
                response.headers(),
                response.extensions(),
            ),
            Err(error) => self.after_error(request.method(), request.headers(), error.as_ref()),
        }?;
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &http::Request<B>) -> Option<http::Request<B>> {
        Some(request.clone())
    }
}
