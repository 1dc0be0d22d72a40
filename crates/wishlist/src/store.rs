use async_trait::async_trait;
use thiserror::Error;

use crate::Item;

/// Where items live. Narrow on purpose: the API only lists everything and adds one item.
#[async_trait]
pub trait Store: Send + Sync {
    /// Every item, following pagination until the store is exhausted.
    async fn list_items(&self) -> Result<Vec<Item>, StoreError>;

    /// Adds `item` unless an item with its id exists; never overwrites.
    async fn insert_new(&self, item: &Item) -> Result<(), StoreError>;
}

/// A store failure, classified by what the caller should tell its client.
#[derive(Debug, Error)]
pub enum StoreError {
    /// An item with this id exists already; nothing was written.
    #[error("an item with id {0:?} already exists")]
    AlreadyExists(String),
    /// Throttled or unreachable: the client may retry later (503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else the store reported (502).
    #[error("store failed: {0}")]
    Failed(String),
}
