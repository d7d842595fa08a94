//! AWS errors in terms an operator can act on: which call, on which resource, and for a denied
//! call, which IAM action the policy must allow.

use aws_sdk_ecs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// Describes a failed call `call` (e.g. `ecs:DescribeServices`) on `resource`.
pub fn describe<E, R>(call: &str, resource: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = err.code().unwrap_or_default().to_owned();
    let denied = code.contains("AccessDenied")
        || code.contains("Unauthorized")
        || code == "UnrecognizedClientException";
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Error::Backend(format!(
            "cannot reach AWS for {call} on {resource}: {}. Check AWS_REGION and, for an emulator, AWS_ENDPOINT_URL",
            DisplayErrorContext(&err)
        )),
        _ if denied => Error::Backend(format!(
            "{call} on {resource} was denied ({code}): the IAM policy must allow {call} (docs/iam-policy.json lists what each command needs)"
        )),
        _ => {
            let message = err.message().map_or_else(|| DisplayErrorContext(&err).to_string(), str::to_owned);
            if code.is_empty() {
                Error::Backend(format!("{call} on {resource} failed: {message}"))
            } else {
                Error::Backend(format!("{call} on {resource} failed ({code}): {message}"))
            }
        }
    }
}

/// Error codes AWS services answer when a call was throttled or failed for a reason that
/// passes: the same call may succeed when tried again.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// Whether `err` is worth another attempt: throttling, a 5xx answer, a timeout, or a request
/// that did not get through.
pub fn is_transient<E>(err: &SdkError<E, aws_sdk_ecs::config::http::HttpResponse>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        _ => {
            err.code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
                || err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() >= 500)
        }
    }
}
