//! The [`Store`] trait the API reads and writes items through, and its error classification.

use async_trait::async_trait;
use thiserror::Error;

use crate::page::{Page, PageRequest};
use crate::Item;

/// Pages followed by [`Store::list_items`] before it gives up on a store that never ends.
const MAX_LIST_PAGES: usize = 100_000;

/// Where items live. Narrow on purpose: the API lists a page of items and adds one item.
#[async_trait]
pub trait Store: Send + Sync {
    /// One page in the store's own stable order, starting after `request.after`, filled through
    /// a [`crate::page::PageBuilder`] so that it respects `request.limit` and `request.budget`.
    async fn list_page(&self, request: &PageRequest) -> Result<Page, StoreError>;

    /// Adds `item` unless an item with its id exists; never overwrites.
    async fn insert_new(&self, item: &Item) -> Result<(), StoreError>;

    /// Every item, following pages until the store is exhausted (tools and tests; the API
    /// itself answers one page per request).
    async fn list_items(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut request = PageRequest::first();
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_page(&request).await?;
            items.extend(page.items);
            match page.next_after {
                Some(next) if request.after.as_ref() != Some(&next) => request.after = Some(next),
                Some(next) => {
                    return Err(StoreError::Failed(format!(
                        "listing items made no progress after id {next:?}"
                    )))
                }
                None => return Ok(items),
            }
        }
        Err(StoreError::Failed(format!(
            "listing items did not end after {MAX_LIST_PAGES} pages"
        )))
    }
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
