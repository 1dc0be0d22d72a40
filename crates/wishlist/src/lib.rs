//! The wish-list API itself, free of any transport.
//!
//! An [`ApiRequest`] goes in, an [`ApiResponse`] comes out: [`handle`] routes it, validates the
//! body into a [`NewItem`], and reads or writes [`Item`]s through a [`Store`]. The same code runs
//! in the Lambda (`handler/`), in the local API (`wishctl dev`) and in tests. This crate has no
//! HTTP server and, unless the `dynamodb` feature is on, no AWS dependency: [`MemoryStore`] keeps
//! items in memory, `DynamoStore` keeps them in a DynamoDB table.
//!
//! [`event`] holds API Gateway's payload format 2.0 and the one conversion between it and the
//! API, used by both the Lambda and `wishctl dev`; [`page`] holds the `GET` page contract.

mod api;
#[cfg(feature = "dynamodb")]
mod dynamodb;
pub mod event;
mod item;
mod memory;
pub mod page;
mod store;

pub use api::{handle, ApiRequest, ApiResponse, MAX_BODY_BYTES};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
pub use item::{
    Item, NewItem, ValidationError, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_URL_CHARS,
};
pub use memory::MemoryStore;
pub use page::{Page, PageRequest, MAX_LIMIT, MAX_LIST_RESPONSE_BYTES};
pub use store::{Store, StoreError};
