//! Every SDK call warren makes, counted and bounded in one place, so that no call site can
//! be missed: an interceptor on every client records each call by its IAM name for `--stats`,
//! and the HTTP client under every client lets at most `--max-concurrency` requests be in
//! flight at once across the process, and keeps ECS's read actions under their documented
//! sustained rates (a token bucket per throttling class; see docs/PERFORMANCE.md).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::{tls, Builder, ConnectorBuilder};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::shared::IntoShared as _;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tokio::sync::Semaphore;

use crate::stats;

/// How many AWS requests may be in flight at once when `--max-concurrency` is not given.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;

static MAX_CONCURRENCY: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_CONCURRENCY);
static PERMITS: OnceLock<Semaphore> = OnceLock::new();

/// Sets how many AWS requests may be in flight at once across the process (at least 1).
/// Takes effect when set before the first AWS request, as `warren` does from its command line.
pub fn set_max_concurrency(n: usize) {
    MAX_CONCURRENCY.store(n.max(1), Ordering::Relaxed);
}

/// How many AWS requests may be in flight at once: also how many calls warren starts side by
/// side where they are independent.
#[must_use]
pub fn max_concurrency() -> usize {
    MAX_CONCURRENCY.load(Ordering::Relaxed)
}

fn permits() -> &'static Semaphore {
    PERMITS.get_or_init(|| Semaphore::new(max_concurrency()))
}

// ---------------------------------------------------------------------------------------------
// Counting

/// The interceptor every client of warren's carries: one call per operation, by its IAM name,
/// with its time and the attempts the SDK retried.
#[derive(Debug, Clone, Copy)]
pub struct Counter;

/// When the call began, in the call's own configuration.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "warren::calls::Counter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if stats::enabled() {
            cfg.interceptor_state().store_put(Started(Instant::now()));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Started(at)) = cfg.load::<Started>().copied() else {
            return Ok(());
        };
        let name = cfg.load::<Metadata>().map_or_else(
            || "aws:Unknown".to_owned(),
            |m| iam_name(m.service(), m.name()),
        );
        let retries = cfg
            .load::<RequestAttempts>()
            .map_or(0, |a| a.attempts().saturating_sub(1));
        stats::record(&name, at.elapsed(), retries);
        Ok(())
    }
}

/// `service:Action` as IAM (and warren's error messages) name an operation of the SDK's
/// service `service` (`ECS`, `Secrets Manager`, `SFN`…).
#[must_use]
pub fn iam_name(service: &str, operation: &str) -> String {
    let prefix = match service {
        "EventBridge" => "events".to_owned(),
        "SFN" => "states".to_owned(),
        other => other.to_ascii_lowercase().replace(' ', ""),
    };
    format!("{prefix}:{operation}")
}

// ---------------------------------------------------------------------------------------------
// Bounding

/// The SDK's default HTTPS client (as `aws-smithy-runtime` builds it for the latest behaviour
/// version), under the process's bound on requests in flight.
#[must_use]
pub fn bounded_client() -> SharedHttpClient {
    let inner = Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.set_proxy_config(Some(ProxyConfig::from_env()));
        builder.build()
    });
    Bounded { inner }.into_shared()
}

/// An HTTP client whose requests wait for one of the process's permits.
#[derive(Debug, Clone)]
struct Bounded {
    inner: SharedHttpClient,
}

impl HttpClient for Bounded {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(BoundedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct BoundedConnector {
    inner: SharedHttpConnector,
}

impl HttpConnector for BoundedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        HttpConnectorFuture::new(async move {
            if let Some(bucket) = request
                .headers()
                .get("x-amz-target")
                .and_then(ecs_read_bucket)
            {
                bucket.take().await;
            }
            // The semaphore is never closed: a permit always comes.
            let _permit = permits().acquire().await.ok();
            let _in_flight = stats::InFlight::start();
            inner.call(request).await
        })
    }
}

/// The most requests of one ECS throttling class of read actions in one second (the bucket's
/// capacity), and the sustained rate per second (its refill): the smallest that "Request
/// throttling for the Amazon ECS API" documents for a class of read actions (cluster reads).
const READ_BURST: f64 = 50.0;
const READ_RATE: f64 = 20.0;

/// A token bucket of [`READ_BURST`] tokens refilled at [`READ_RATE`] a second.
struct Bucket {
    /// Tokens left, and when they were counted.
    state: Mutex<(f64, Option<Instant>)>,
}

impl Bucket {
    const fn new() -> Bucket {
        Bucket {
            state: Mutex::new((READ_BURST, None)),
        }
    }

    /// Waits for a token and takes it.
    async fn take(&self) {
        loop {
            let wait = {
                let mut state = self
                    .state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let now = Instant::now();
                let (tokens, counted) = &mut *state;
                if let Some(counted) = counted {
                    *tokens = (*tokens + now.duration_since(*counted).as_secs_f64() * READ_RATE)
                        .min(READ_BURST);
                }
                *counted = Some(now);
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    None
                } else {
                    Some(Duration::from_secs_f64((1.0 - *tokens) / READ_RATE))
                }
            };
            match wait {
                None => return,
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }
}

static CLUSTER_READS: Bucket = Bucket::new();
static SERVICE_READS: Bucket = Bucket::new();
static TASK_DEFINITION_READS: Bucket = Bucket::new();
static TASK_READS: Bucket = Bucket::new();

/// The bucket of the ECS read action a request's `X-Amz-Target`
/// (`AmazonEC2ContainerServiceV20141113.DescribeServices`) names; `None` for other requests.
fn ecs_read_bucket(target: &str) -> Option<&'static Bucket> {
    let (service, action) = target.split_once('.')?;
    if !service.starts_with("AmazonEC2ContainerService") {
        return None;
    }
    match action {
        "DescribeClusters" | "ListClusters" => Some(&CLUSTER_READS),
        "DescribeServices" | "ListServices" | "ListServicesByNamespace" => Some(&SERVICE_READS),
        "DescribeTaskDefinition" | "ListTaskDefinitions" | "ListTaskDefinitionFamilies" => {
            Some(&TASK_DEFINITION_READS)
        }
        "DescribeTasks" | "ListTasks" => Some(&TASK_READS),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_named_as_iam_names_them() {
        assert_eq!(iam_name("ECS", "DescribeServices"), "ecs:DescribeServices");
        assert_eq!(iam_name("SSM", "GetParameters"), "ssm:GetParameters");
        assert_eq!(iam_name("mq", "ListBrokers"), "mq:ListBrokers");
        assert_eq!(iam_name("EventBridge", "ListRules"), "events:ListRules");
        assert_eq!(
            iam_name("SFN", "ListStateMachines"),
            "states:ListStateMachines"
        );
        assert_eq!(
            iam_name("Secrets Manager", "GetSecretValue"),
            "secretsmanager:GetSecretValue"
        );
        assert_eq!(iam_name("DynamoDB", "PutItem"), "dynamodb:PutItem");
        assert_eq!(iam_name("Lambda", "ListFunctions"), "lambda:ListFunctions");
        assert_eq!(iam_name("Pipes", "ListPipes"), "pipes:ListPipes");
        assert_eq!(
            iam_name("Scheduler", "GetSchedule"),
            "scheduler:GetSchedule"
        );
        assert_eq!(iam_name("S3", "GetObject"), "s3:GetObject");
    }

    #[test]
    fn ecs_reads_share_a_bucket_per_throttling_class() {
        let bucket = |target| ecs_read_bucket(target).map(|b| std::ptr::from_ref(b) as usize);
        let services = bucket("AmazonEC2ContainerServiceV20141113.DescribeServices");
        assert!(services.is_some());
        assert_eq!(
            services,
            bucket("AmazonEC2ContainerServiceV20141113.ListServices")
        );
        assert_ne!(
            services,
            bucket("AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition")
        );
        assert_eq!(
            bucket("AmazonEC2ContainerServiceV20141113.UpdateService"),
            None
        );
        assert_eq!(bucket("AmazonSSM.GetParameters"), None);
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_the_sustained_rate() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let bucket = Bucket::new();
        let started = Instant::now();
        runtime.block_on(async {
            for _ in 0..50 {
                bucket.take().await;
            }
        });
        assert!(started.elapsed() < Duration::from_millis(40));
        runtime.block_on(async {
            for _ in 0..4 {
                bucket.take().await;
            }
        });
        // Four more tokens at 20 a second take about 200 ms.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }
}
