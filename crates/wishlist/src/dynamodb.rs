use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

use crate::{Item, Store, StoreError};

/// Items in a DynamoDB table whose partition key is `id` (S).
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    page_size: Option<i32>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            page_size: None,
        }
    }

    /// Caps the items per `Scan` page (DynamoDB's own cap is 1 MB); for tests of pagination.
    pub fn with_page_size(mut self, items: i32) -> Self {
        self.page_size = Some(items);
        self
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand, key `id`) unless it exists, and waits until it is active.
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
            Err(err) => return Err(classify("describing table", &self.table, err)),
        }
        let key = stack::TABLE_KEY.name;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(key)
                    .attribute_type(ScalarAttributeType::S)
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
            Err(err) => return Err(classify("creating table", &self.table, err)),
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
    async fn list_items(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start_key: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_limit(self.page_size)
                .set_exclusive_start_key(start_key.take())
                .send()
                .await
                .map_err(|err| classify("scanning", &self.table, err))?;
            for raw in page.items() {
                match item_from_attributes(raw) {
                    Some(item) => items.push(item),
                    None => tracing::warn!(
                        table = %self.table,
                        "skipping an item without a string id and name"
                    ),
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start_key = Some(key),
                _ => return Ok(items),
            }
        }
    }

    async fn insert_new(&self, item: &Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_to_attributes(item)))
            .condition_expression("attribute_not_exists(id)")
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

/// Throttling, capacity and transport failures are retryable (503); the rest are not (502).
fn classify<E, R>(action: &str, table: &str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
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
        None => aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string(),
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
        ("id".to_string(), AttributeValue::S(item.id.clone())),
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
        id: string("id")?,
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
    fn items_without_a_name_are_skipped_not_fatal() {
        let attributes = HashMap::from([("id".to_string(), AttributeValue::S("x".into()))]);
        assert_eq!(item_from_attributes(&attributes), None);
    }
}
