//! [`MemoryStore`]: items in process memory, ordered by id so that cursors resume exactly.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::page::{Page, PageBuilder, PageRequest};
use crate::{Item, Store, StoreError};

/// Items in process memory: for `wishctl dev` without a database, and for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: RwLock<BTreeMap<String, Item>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn list_page(&self, request: &PageRequest) -> Result<Page, StoreError> {
        let items = self
            .items
            .read()
            .map_err(|_| StoreError::Failed("memory store lock poisoned".into()))?;
        let start = match &request.after {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        let mut page = PageBuilder::new(request);
        for item in items.range((start, Bound::Unbounded)).map(|(_, item)| item) {
            if !page.offer(item.clone()) {
                break;
            }
        }
        Ok(page.finish())
    }

    async fn insert_new(&self, item: &Item) -> Result<(), StoreError> {
        let mut items = self
            .items
            .write()
            .map_err(|_| StoreError::Failed("memory store lock poisoned".into()))?;
        if items.contains_key(&item.id) {
            return Err(StoreError::AlreadyExists(item.id.clone()));
        }
        items.insert(item.id.clone(), item.clone());
        Ok(())
    }
}
