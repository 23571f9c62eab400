//! One mapping from SDK errors to port errors: a failed condition is `ConditionFailed`;
//! throttling, timeouts, connection failures and 5xx are retryable (`Unavailable`); validation
//! errors are `Invalid`; anything else is `Backend`.

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use puhui_ports::PortError;

/// Error codes meaning "slow down or try again later".
const RETRYABLE: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalServerError",
    "InternalError",
    "InternalFailure",
    "TransactionConflictException",
    "TransactionInProgressException",
    "RequestTimeout",
    "RequestTimeoutException",
    "KmsThrottled",
    "KMS.ThrottlingException",
];

/// Error codes meaning "this request can never succeed as sent".
const INVALID: &[&str] = &[
    "ValidationException",
    "ItemCollectionSizeLimitExceededException",
    "SerializationException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "InvalidMessageContents",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidBatchEntryId",
    "BatchEntryIdsNotDistinct",
    "TooManyEntriesInBatchRequest",
    "EmptyBatchRequest",
    "BatchRequestTooLong",
    "ReceiptHandleIsInvalid",
    "InvalidIdFormat",
    "AWS.SimpleQueueService.InvalidBatchEntryId",
    "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
    "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
    "AWS.SimpleQueueService.EmptyBatchRequest",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "InvalidArgument",
    "InvalidRequest",
    "KeyTooLongError",
    "EntityTooLarge",
    "InvalidBucketName",
];

/// Maps a failed SDK call onto a port error; `op` names the operation for the message.
pub(crate) fn sdk_error<E>(op: &str, e: SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &e {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            classify(op, ctx.err().code(), ctx.err().message(), status)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable(format!("{op}: {}", DisplayErrorContext(&e)))
        }
        SdkError::ConstructionFailure(_) => {
            PortError::Invalid(format!("{op}: {}", DisplayErrorContext(&e)))
        }
        _ => PortError::Backend(format!("{op}: {}", DisplayErrorContext(&e))),
    }
}

/// Maps an error code and HTTP status onto a port error.
pub(crate) fn classify(
    op: &str,
    code: Option<&str>,
    message: Option<&str>,
    status: u16,
) -> PortError {
    let code_text = code.unwrap_or("unknown error");
    let text = match message {
        Some(m) if !m.is_empty() => format!("{op}: {code_text}: {m}"),
        _ => format!("{op}: {code_text}"),
    };
    match code {
        Some("ConditionalCheckFailedException") => PortError::ConditionFailed(text),
        Some(c) if RETRYABLE.contains(&c) => PortError::Unavailable(text),
        Some(c) if INVALID.contains(&c) => PortError::Invalid(text),
        _ if status >= 500 || status == 429 => PortError::Unavailable(text),
        _ => PortError::Backend(text),
    }
}

/// A request that could not be built (a required field missing) is invalid.
pub(crate) fn build_error(e: BuildError) -> PortError {
    PortError::Invalid(format!("request: {e}"))
}
