use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::{Item, Store, StoreError};

/// Items in process memory: for `wishctl dev` without a database, and for tests.
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: RwLock<HashMap<String, Item>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn list_items(&self) -> Result<Vec<Item>, StoreError> {
        let items = self
            .items
            .read()
            .map_err(|_| StoreError::Failed("memory store lock poisoned".into()))?;
        Ok(items.values().cloned().collect())
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
