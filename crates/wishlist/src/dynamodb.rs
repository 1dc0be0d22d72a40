//! [`DynamoStore`]: items in a DynamoDB table keyed by [`stack::TABLE_KEY`] (`id`, S). A `GET`
//! page is one or more `Scan` calls from the cursor's id (`ExclusiveStartKey`) until the page is
//! full or [`DynamoStore::PAGE_TIME_BUDGET`] is spent; a `POST` is a conditional `PutItem` that
//! never overwrites.
//!
//! The DynamoDB clients of `bootstrap` and of `wishctl dev` ([`DynamoStore::open_local`]) carry
//! [`DynamoStore::timeout_config`]: without it the SDK waits for a stalled endpoint forever (it
//! sets no attempt or operation timeout by default), and the Lambda would hang until its own
//! timeout instead of answering 503.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

use crate::page::{Page, PageBuilder, PageRequest};
use crate::{Item, Store, StoreError};

/// `Scan` calls one page may take before the store is reported broken (a page needs a handful:
/// DynamoDB returns up to 1 MB per call and a page holds at most 5 MB).
const MAX_SCANS_PER_PAGE: usize = 10_000;

/// The attribute that holds an item's id: the table's partition key.
const KEY: &str = stack::TABLE_KEY.name;

/// Items in a DynamoDB table whose partition key is [`stack::TABLE_KEY`] (`id`, S).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<i32>,
    page_time_budget: Duration,
}

impl DynamoStore {
    /// The longest one HTTP attempt of a DynamoDB call may take (connecting included) before
    /// the SDK gives up on it and retries. A `Scan` of 1 MB or a `PutItem` takes milliseconds to
    /// tens of milliseconds; 2 s is room for a slow moment and short enough for a retry to fit.
    pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The longest one DynamoDB call may take with all its retries: under the function's
    /// default timeout of 10 s (`wishctl up --timeout`), so that a stalled or throttling
    /// DynamoDB gets a 503 answer from the function rather than a Lambda timeout (which API
    /// Gateway turns into a bare 503 only after the full 10 s, and which recycles the instance).
    pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);

    /// The longest a TCP (and TLS) connection to DynamoDB may take to open.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

    /// The longest one `GET` page may spend in `Scan` calls, all of them together. The function's
    /// default timeout is 10 s (`stack::FunctionSettings`, `wishctl up --timeout`), and a page
    /// may take many Scans (each up to [`Self::OPERATION_TIMEOUT`]): without a bound on the
    /// whole, a slow but answering DynamoDB would push a `GET` past the function's timeout (a
    /// bare 503 from API Gateway after 10 s, and a recycled instance) or hold a `wishctl dev`
    /// request as long. 5 s leaves the other half of the default timeout for a cold start and
    /// for encoding up to 5 MB of answer. When it runs out the page ends with the items read so
    /// far and a cursor to continue; with no item read yet, the answer is a 503 to retry.
    pub const PAGE_TIME_BUDGET: Duration = Duration::from_secs(5);

    /// The timeouts of every DynamoDB client the store builds: [`Self::CONNECT_TIMEOUT`],
    /// [`Self::ATTEMPT_TIMEOUT`] and [`Self::OPERATION_TIMEOUT`].
    pub fn timeout_config() -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(Self::CONNECT_TIMEOUT)
            .operation_attempt_timeout(Self::ATTEMPT_TIMEOUT)
            .operation_timeout(Self::OPERATION_TIMEOUT)
            .build()
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            page_size: None,
            page_time_budget: Self::PAGE_TIME_BUDGET,
        }
    }

    /// Replaces [`Self::PAGE_TIME_BUDGET`]; for tests of pages cut short by a slow DynamoDB.
    pub fn with_page_time_budget(mut self, budget: Duration) -> Self {
        self.page_time_budget = budget;
        self
    }

    /// Caps the items per `Scan` page (DynamoDB's own cap is 1 MB); for tests of pagination.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    /// For `wishctl dev --dynamodb-endpoint URL --table NAME`: a client for a local
    /// DynamoDB-compatible server (DynamoDB Local, moto) and the table on it, created if missing
    /// (returns whether it was). Region and credentials come from the usual environment when
    /// set; otherwise `us-east-1` and placeholder credentials (local servers accept any, but the
    /// SDK insists on having some). The client has the store's [`DynamoStore::timeout_config`],
    /// so a server that stops answering fails the call instead of holding `wishctl dev` up.
    pub async fn open_local(
        endpoint: &str,
        table: &str,
    ) -> Result<(DynamoStore, bool), StoreError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .timeout_config(DynamoStore::timeout_config())
            .endpoint_url(endpoint)
            .region(
                aws_config::meta::region::RegionProviderChain::default_provider()
                    .or_else("us-east-1"),
            );
        let has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
            || std::env::var_os("AWS_PROFILE").is_some();
        if !has_credentials {
            loader = loader.credentials_provider(aws_credential_types::Credentials::new(
                "local",
                "local",
                None,
                None,
                "wishctl-dev",
            ));
        }
        let config = loader.load().await;
        let store = DynamoStore::new(Client::new(&config), table);
        let created = store.create_table_if_missing().await?;
        Ok((store, created))
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand, key [`stack::TABLE_KEY`]) unless it exists, and waits until it is active.
    /// For local DynamoDB-compatible servers; deployed tables are created by `wishctl up`.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => return Ok(false),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(err) => return Err(classify("describing", &self.table, err)),
        }
        let key = KEY;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::from(stack::TABLE_KEY.attribute_type))
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(classify("creating", &self.table, err)),
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(std::time::Duration::from_secs(60))
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("waiting for table {}: {e}", self.table))
            })?;
        Ok(true)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn list_page(&self, request: &PageRequest) -> Result<Page, StoreError> {
        let deadline = Instant::now() + self.page_time_budget;
        let mut page = PageBuilder::new(request);
        let mut start_key = request
            .after
            .as_ref()
            .map(|id| HashMap::from([(KEY.to_string(), AttributeValue::S(id.clone()))]));
        for _ in 0..MAX_SCANS_PER_PAGE {
            // Ask for no more than the page can take plus one (to learn whether more exist).
            let wanted = i32::try_from(page.wanted()).unwrap_or(i32::MAX);
            let limit = match self.page_size {
                Some(size) => Some(size.min(wanted)),
                None if page.wanted() <= crate::page::MAX_LIMIT + 1 => Some(wanted),
                None => None,
            };
            let scan = self
                .client
                .scan()
                .table_name(&self.table)
                .set_limit(limit)
                .set_exclusive_start_key(start_key.clone())
                .send();
            let remaining = deadline.saturating_duration_since(Instant::now());
            // A Scan cut short reads nothing, so its items are neither lost nor sent twice: the
            // cursor resumes after the last item of the Scans that completed.
            let Ok(scanned) = tokio::time::timeout(remaining, scan).await else {
                return self.out_of_time(page);
            };
            let scanned = scanned.map_err(|err| classify("scanning", &self.table, err))?;
            for raw in scanned.items() {
                match item_from_attributes(raw) {
                    Some(item) => {
                        if !page.offer(item) {
                            return Ok(page.finish());
                        }
                    }
                    None => tracing::warn!(
                        table = %self.table,
                        "skipping an item without a string id and name"
                    ),
                }
            }
            match scanned.last_evaluated_key {
                Some(key) if !key.is_empty() => {
                    if start_key.as_ref() == Some(&key) {
                        return Err(StoreError::Failed(format!(
                            "scanning table {}: the scan made no progress (LastEvaluatedKey repeated)",
                            self.table
                        )));
                    }
                    start_key = Some(key);
                }
                _ => return Ok(page.finish()),
            }
        }
        Err(StoreError::Failed(format!(
            "scanning table {}: no page after {MAX_SCANS_PER_PAGE} Scan calls",
            self.table
        )))
    }

    async fn insert_new(&self, item: &Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_attributes(item)))
            .condition_expression("attribute_not_exists(#key)")
            .expression_attribute_names("#key", KEY)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists(item.id.clone()))
            }
            Err(err) => Err(classify("putting an item into", &self.table, err)),
        }
    }
}

impl DynamoStore {
    /// The page when its time budget ran out before it was full: the items read so far with a
    /// cursor after the last one (more may follow: the scan did not reach its end), or, with
    /// none read, an error the API answers with 503 (retry).
    fn out_of_time(&self, page: PageBuilder) -> Result<Page, StoreError> {
        let budget = self.page_time_budget;
        match page.finish_early() {
            Some(page) => {
                tracing::warn!(
                    table = %self.table,
                    items = page.items.len(),
                    budget_ms = budget.as_millis() as u64,
                    "DynamoDB is slow: answering a partial page with a cursor"
                );
                Ok(page)
            }
            None => {
                tracing::error!(
                    table = %self.table,
                    budget_ms = budget.as_millis() as u64,
                    "DynamoDB is slow: no item read within the page's time budget"
                );
                Err(StoreError::Unavailable(format!(
                    "scanning table {}: no item read within {} ms; retry",
                    self.table,
                    budget.as_millis()
                )))
            }
        }
    }
}

/// Throttling, capacity and transport failures are retryable (503); the rest are not (502).
fn classify<E, R>(action: &str, table: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let retryable = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "ThrottlingException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    };
    let detail = match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("unknown"),
            service.message().unwrap_or("no message")
        ),
        // Never the SDK's `Debug` text (`DisplayErrorContext` appends it): the raw response.
        None => stack::error_chain(&err),
    };
    let message = format!("{action} table {table}: {detail}");
    tracing::error!(table, action, error = %detail, retryable, "DynamoDB call failed");
    if retryable {
        StoreError::Unavailable(message)
    } else {
        StoreError::Failed(message)
    }
}

fn item_to_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut attributes = HashMap::from([
        (KEY.to_string(), AttributeValue::S(item.id.clone())),
        ("name".to_string(), AttributeValue::S(item.name.clone())),
    ]);
    let optional = [
        ("description", &item.description),
        ("url", &item.url),
        ("createdAt", &item.created_at),
        ("createdBy", &item.created_by),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            attributes.insert(key.to_string(), AttributeValue::S(value.clone()));
        }
    }
    attributes
}

/// Reads an item back; items written by other tools (the walkthrough's Node Lambda) lack
/// `createdAt`, which stays absent rather than failing the whole listing.
fn item_from_attributes(attributes: &HashMap<String, AttributeValue>) -> Option<Item> {
    let string = |key: &str| attributes.get(key).and_then(|v| v.as_s().ok()).cloned();
    Some(Item {
        id: string(KEY)?,
        name: string("name")?,
        description: string("description"),
        url: string("url"),
        created_at: string("createdAt"),
        created_by: string("createdBy"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_attributes() {
        let item = Item {
            id: "1".into(),
            name: "n".into(),
            description: None,
            url: Some("https://e.com".into()),
            created_at: Some("2026-01-01T00:00:00.000Z".into()),
            created_by: Some("auth0|a".into()),
        };
        let attributes = item_to_attributes(&item);
        assert!(!attributes.contains_key("description"));
        assert_eq!(item_from_attributes(&attributes), Some(item));
    }

    #[test]
    fn the_id_is_stored_under_the_key_of_the_stacks_table() {
        let item = Item {
            id: "abc".into(),
            name: "n".into(),
            description: None,
            url: None,
            created_at: None,
            created_by: None,
        };
        let attributes = item_to_attributes(&item);
        assert_eq!(
            attributes.get(stack::TABLE_KEY.name),
            Some(&AttributeValue::S("abc".into()))
        );
        assert_eq!(
            ScalarAttributeType::from(stack::TABLE_KEY.attribute_type),
            ScalarAttributeType::S,
            "the table key's type is one DynamoDB knows"
        );
    }

    #[test]
    fn every_client_has_attempt_and_operation_timeouts_under_the_functions_timeout() {
        let timeouts = DynamoStore::timeout_config();
        let attempt = DynamoStore::ATTEMPT_TIMEOUT;
        let operation = DynamoStore::OPERATION_TIMEOUT;
        assert_eq!(timeouts.operation_attempt_timeout(), Some(attempt));
        assert_eq!(timeouts.operation_timeout(), Some(operation));
        assert!(attempt < operation);
        let function_timeout = Duration::from_secs(u64::from(
            stack::FunctionSettings::default().timeout_seconds,
        ));
        assert!(operation < function_timeout);
    }

    #[test]
    fn a_page_spends_at_most_half_the_functions_default_timeout_scanning() {
        let function_timeout = Duration::from_secs(u64::from(
            stack::FunctionSettings::default().timeout_seconds,
        ));
        assert!(DynamoStore::PAGE_TIME_BUDGET * 2 <= function_timeout);
    }

    #[test]
    fn items_without_a_name_are_skipped_not_fatal() {
        let attributes = HashMap::from([(KEY.to_string(), AttributeValue::S("x".into()))]);
        assert_eq!(item_from_attributes(&attributes), None);
    }
}
