//! A read that has not answered after a third of its attempt's time is sent a second time.
//!
//! A stalled call (a dropped packet, an overloaded front end) costs the whole attempt timeout
//! before the SDK abandons and retries it ([`crate::timeouts`]), and a run reads the stack many
//! times: every resume after a lost answer reads it again. A read is safe to send twice, so
//! instead of waiting for the attempt to time out, a copy of the request goes out beside the
//! first once a third of the attempt's time has passed without an answer, and whichever answers
//! first is used (the other is dropped). On a healthy link no read takes that long and nothing is
//! sent twice; on a slow one the first request keeps running, so nothing is lost by the copy.
//! Calls that change something are never sent twice (see [`crate::idempotency`] for what happens
//! to those).
//!
//! Two parts: [`MarkReads`], an interceptor that tags each attempt of a read operation with
//! when to send its copy, and [`HedgedReads`], an HTTP client around the SDK's own that sends
//! the copy.

use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::timeout::TimeoutConfig;

/// The share of an attempt's timeout after which a read gets its copy.
const HEDGE_AT_FRACTION: u32 = 3;

/// The earliest a copy is sent, however short the attempt timeout: below this, a copy would
/// race answers that are merely on their way.
const EARLIEST_HEDGE: Duration = Duration::from_millis(250);

/// Whether an operation only reads: `Get…`, `List…` and `Describe…` calls of every service we
/// use. Log searches (`FilterLogEvents`) are left out: CloudWatch Logs may take seconds to
/// search, and a copy would only double its work.
pub(crate) fn is_read(operation: &str) -> bool {
    ["Get", "List", "Describe"]
        .iter()
        .any(|verb| operation.starts_with(verb))
}

/// When the copy of an attempt is sent, for an attempt that may take `attempt`.
fn hedge_after(attempt: Duration) -> Duration {
    (attempt / HEDGE_AT_FRACTION).max(EARLIEST_HEDGE)
}

/// On a request: send a copy after this long without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HedgeAfter(Duration);

/// Tags every attempt of a read operation with when its copy is due (a third of the attempt's
/// timeout, which [`crate::timeouts::LongerRetries`] lengthens after a timed-out attempt).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MarkReads;

impl Intercept for MarkReads {
    fn name(&self) -> &'static str {
        "wishctl::MarkReads"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let read = cfg.load::<Metadata>().is_some_and(|m| is_read(m.name()));
        let attempt = cfg
            .load::<TimeoutConfig>()
            .and_then(TimeoutConfig::operation_attempt_timeout);
        if let (true, Some(attempt)) = (read, attempt) {
            context
                .request_mut()
                .add_extension(HedgeAfter(hedge_after(attempt)));
        }
        Ok(())
    }
}

/// An HTTP client that sends a copy of a request tagged by [`MarkReads`] when the first has not
/// answered in time, and returns the first answer of the two.
#[derive(Debug, Clone)]
pub(crate) struct HedgedReads {
    inner: SharedHttpClient,
}

impl HedgedReads {
    /// Around `inner`, or around the SDK's default HTTPS client (rustls with aws-lc, proxy
    /// settings from the environment, as the SDK builds it) when there is none.
    pub(crate) fn around(inner: Option<SharedHttpClient>) -> SharedHttpClient {
        let inner = inner.unwrap_or_else(default_https_client);
        SharedHttpClient::new(HedgedReads { inner })
    }
}

/// The client the SDK would build by itself.
fn default_https_client() -> SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

impl HttpClient for HedgedReads {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(HedgedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner
            .validate_base_client_config(runtime_components, cfg)
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.inner.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug, Clone)]
struct HedgedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for HedgedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let Some(HedgeAfter(after)) = request.extension::<HedgeAfter>().copied() else {
            return self.inner.call(request);
        };
        // The copy carries no extensions, so it is never copied again.
        let Some(copy) = request.try_clone() else {
            return self.inner.call(request);
        };
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            let first = inner.call(request);
            tokio::pin!(first);
            tokio::select! {
                answer = &mut first => return answer,
                () = tokio::time::sleep(after) => {}
            }
            tracing::debug!(
                uri = %copy.uri(),
                after_ms = after.as_millis() as u64,
                "no answer yet: sending the read a second time"
            );
            let second = inner.call(copy);
            tokio::pin!(second);
            // The first answer of the two; a failed one only when both failed.
            tokio::select! {
                answer = &mut first => match answer {
                    Ok(response) => Ok(response),
                    Err(_) => second.await,
                },
                answer = &mut second => match answer {
                    Ok(response) => Ok(response),
                    Err(_) => first.await,
                },
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use aws_smithy_runtime_api::client::http::{
        HttpConnector, HttpConnectorFuture, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use super::{hedge_after, is_read, HedgeAfter, HedgedConnector};

    /// Answers the first request after `first_delay`, every later one at once; counts them.
    #[derive(Debug)]
    struct SlowFirst {
        calls: Arc<AtomicUsize>,
        first_delay: Duration,
    }

    impl HttpConnector for SlowFirst {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let delay = if n == 0 {
                self.first_delay
            } else {
                Duration::ZERO
            };
            HttpConnectorFuture::new(async move {
                tokio::time::sleep(delay).await;
                let status = if n == 0 { 200 } else { 201 };
                Ok(Response::new(
                    StatusCode::try_from(status).unwrap(),
                    SdkBody::empty(),
                ))
            })
        }
    }

    fn connector(first_delay: Duration) -> (HedgedConnector, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let inner = SharedHttpConnector::new(SlowFirst {
            calls: calls.clone(),
            first_delay,
        });
        (HedgedConnector { inner }, calls)
    }

    fn read(after: Duration) -> HttpRequest {
        let mut request = HttpRequest::new(SdkBody::from("{}"));
        request.add_extension(HedgeAfter(after));
        request
    }

    #[tokio::test]
    async fn a_stalled_read_is_answered_by_its_copy() {
        let (hedged, calls) = connector(Duration::from_secs(30));
        let started = Instant::now();
        let answer = hedged.call(read(Duration::from_millis(50))).await.unwrap();
        assert_eq!(answer.status().as_u16(), 201, "the copy's answer");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[tokio::test]
    async fn a_read_answered_in_time_is_sent_once() {
        let (hedged, calls) = connector(Duration::ZERO);
        let answer = hedged.call(read(Duration::from_secs(30))).await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_call_that_is_not_a_read_is_never_copied() {
        let (hedged, calls) = connector(Duration::from_millis(200));
        let answer = hedged
            .call(HttpRequest::new(SdkBody::from("{}")))
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn reads_are_gets_lists_and_describes_but_not_log_searches() {
        for read in ["GetRole", "ListTagsOfResource", "DescribeTable", "GetApis"] {
            assert!(is_read(read), "{read}");
        }
        for write in [
            "CreateApi",
            "PutRolePolicy",
            "UpdateFunctionCode",
            "FilterLogEvents",
            "TagResource",
            "Scan",
        ] {
            assert!(!is_read(write), "{write}");
        }
        assert_eq!(hedge_after(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(
            hedge_after(Duration::from_millis(300)),
            Duration::from_millis(250)
        );
    }
}
