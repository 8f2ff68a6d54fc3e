//! The HTTP client every strategy starts from: hyper's pooled client as a
//! `tower::Service`, answering with the whole body, plus [`PageService`] that turns
//! page numbers into requests and keeps each answer next to its page.
//!
//! ```
//! use examples::api_server::{ApiConfig, ApiServer};
//! use examples::client::{HttpClient, PageService};
//! use tower::{Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower::BoxError> {
//! let server = ApiServer::start(ApiConfig::default()).await?;
//! let mut pages = PageService::new(&server.url(), HttpClient::new())?;
//! let fetched = pages.ready().await?.call(3).await?;
//! assert_eq!(fetched.page, 3);
//! assert_eq!(fetched.response?.status(), 200);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{BoxError, Service, ServiceExt};

/// The request type of every stack in the examples: a GET without a body.
pub type ApiRequest = Request<Empty<Bytes>>;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// hyper's pooled HTTP/1 client as a `Service`, reading each body to the end.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with its own connection pool.
    pub fn new() -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `GET url?page=N`, outside any stack.
    pub async fn get_page(&self, url: &str, page: u64) -> Result<Response<Bytes>, BoxError> {
        let request = page_request(&page_uri(url, page)?)?;
        self.clone().oneshot(request).await
    }
}

impl Service<ApiRequest> for HttpClient {
    type Response = Response<Bytes>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Response<Bytes>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: ApiRequest) -> Self::Future {
        let send = self.inner.request(request);
        Box::pin(async move {
            let response = send.await?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await?.to_bytes();
            Ok(Response::from_parts(parts, body))
        })
    }
}

/// `url?page=N` (or `url&page=N` when `url` has a query already).
pub fn page_uri(url: &str, page: u64) -> Result<Uri, http::uri::InvalidUri> {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}page={page}").parse()
}

/// A GET for `uri`.
pub fn page_request(uri: &Uri) -> Result<ApiRequest, http::Error> {
    Request::get(uri.clone()).body(Empty::new())
}

/// One page's answer, with the page it belongs to.
#[derive(Debug)]
pub struct Fetched {
    /// The page number asked for.
    pub page: u64,
    /// The final answer after whatever the stack did (retries included).
    pub response: Result<Response<Bytes>, BoxError>,
}

/// Turns page numbers into GETs of `url?page=N` through the stack `S`.
///
/// A failed page is an answer, not an error of the service, so a stream driven by
/// `call_all` goes on after it; only `poll_ready` errors end the stream.
#[derive(Clone, Debug)]
pub struct PageService<S> {
    url: String,
    inner: S,
}

impl<S> PageService<S> {
    /// Pages of `url` through `inner`. Fails if `url?page=1` is not a valid URI.
    pub fn new(url: &str, inner: S) -> Result<Self, http::uri::InvalidUri> {
        page_uri(url, 1)?;
        Ok(Self {
            url: url.to_owned(),
            inner,
        })
    }

    /// The stack underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Service<u64> for PageService<S>
where
    S: Service<ApiRequest, Response = Response<Bytes>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    type Response = Fetched;
    type Error = BoxError;
    type Future = BoxFuture<Result<Fetched, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, page: u64) -> Self::Future {
        let request = page_uri(&self.url, page)
            .map_err(BoxError::from)
            .and_then(|uri| page_request(&uri).map_err(BoxError::from));
        match request {
            Ok(request) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let response = response.await.map_err(Into::into);
                    Ok(Fetched { page, response })
                })
            }
            Err(e) => Box::pin(async move {
                Ok(Fetched {
                    page,
                    response: Err(e),
                })
            }),
        }
    }
}
