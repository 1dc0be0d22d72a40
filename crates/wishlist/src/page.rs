//! Pages of `GET`: the size budget, the `limit` and `cursor` query parameters, and the opaque
//! cursor that resumes a listing after the last item of the previous page.
//!
//! The contract (README, "The Lambda"): `GET` answers `{"Items":[...],"Count":N}` with every
//! item while the answer fits [`MAX_LIST_RESPONSE_BYTES`]; past that budget, or when `?limit=N`
//! asks for fewer, it answers one page plus `"NextCursor"`, which the client passes back as
//! `?cursor=...`. The last page has no `NextCursor`. Both stores fill pages through
//! [`PageBuilder`], so they cut pages at the same places for the same items.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use thiserror::Error;

use crate::Item;

/// Every `GET` answer, as the Lambda returns it (the payload 2.0 response with the body
/// JSON-escaped inside it), stays at or under this many bytes: well under Lambda's 6 MB limit
/// for a synchronous response (6,291,456 bytes), so a growing table never breaks `GET`.
pub const MAX_LIST_RESPONSE_BYTES: usize = 5_000_000;

/// What the items of one page may take of [`MAX_LIST_RESPONSE_BYTES`]; the rest is kept for the
/// envelope (`statusCode`, headers, `Count`, the cursor).
pub const ITEMS_BUDGET_BYTES: usize = MAX_LIST_RESPONSE_BYTES - 16 * 1024;

/// The largest `?limit=` a client may ask for.
pub const MAX_LIMIT: usize = 1000;

/// Cursors longer than this are refused before decoding (an id is at most 2,048 bytes).
const MAX_CURSOR_CHARS: usize = 4096;
/// DynamoDB's limit for a partition key value.
const MAX_ID_BYTES: usize = 2048;
/// Marks the cursor format, so that a later format can tell old cursors apart.
const CURSOR_VERSION: &str = "1:";

/// What one `GET` asks the store for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Resume after the item with this id (from a cursor); `None` starts at the beginning.
    pub after: Option<String>,
    /// At most this many items.
    pub limit: usize,
    /// At most this many bytes of items, measured by [`encoded_size`].
    pub budget: usize,
}

impl PageRequest {
    /// The first page with no `limit`: every item that fits the budget.
    pub fn first() -> Self {
        PageRequest {
            after: None,
            limit: usize::MAX,
            budget: ITEMS_BUDGET_BYTES,
        }
    }
}

/// One page of items in store order, and the id to resume after when more items exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<Item>,
    /// `Some(last item's id)` when at least one more item exists after this page.
    pub next_after: Option<String>,
}

/// Fills one page: a store offers its items in its own order until [`PageBuilder::offer`]
/// refuses one, which also proves that more items exist (so the last page never carries a
/// cursor that leads to an empty page).
#[derive(Debug)]
pub struct PageBuilder {
    limit: usize,
    budget: usize,
    used: usize,
    items: Vec<Item>,
    more: bool,
}

impl PageBuilder {
    pub fn new(request: &PageRequest) -> Self {
        PageBuilder {
            limit: request.limit.max(1),
            budget: request.budget,
            used: 0,
            items: Vec::new(),
            more: false,
        }
    }

    /// Takes `item` into the page, or returns `false` (and keeps nothing) when the page is full.
    /// A page always takes its first item, whatever its size, so that listing makes progress.
    pub fn offer(&mut self, item: Item) -> bool {
        if self.more {
            return false;
        }
        let size = encoded_size(&item) + 1;
        let over_budget = !self.items.is_empty() && self.used.saturating_add(size) > self.budget;
        if self.items.len() >= self.limit || over_budget {
            self.more = true;
            return false;
        }
        self.used = self.used.saturating_add(size);
        self.items.push(item);
        true
    }

    /// How many more items the store should fetch: the room left plus one, to learn whether
    /// more exist.
    pub fn wanted(&self) -> usize {
        self.limit
            .saturating_sub(self.items.len())
            .saturating_add(1)
    }

    pub fn is_full(&self) -> bool {
        self.more
    }

    /// Ends the page before it is full (the store ran out of time): the items taken so far and
    /// a cursor after the last, since more items may follow; `None` when no item was taken.
    /// The page after that cursor may be empty (the last page then has no cursor).
    pub fn finish_early(self) -> Option<Page> {
        let next_after = self.items.last().map(|item| item.id.clone())?;
        Some(Page {
            items: self.items,
            next_after: Some(next_after),
        })
    }

    pub fn finish(self) -> Page {
        let next_after = if self.more {
            self.items.last().map(|item| item.id.clone())
        } else {
            None
        };
        Page {
            items: self.items,
            next_after,
        }
    }
}

/// The bytes `item` adds to the Lambda's response: its JSON, escaped once more as part of the
/// payload 2.0 `body` string (every `"` and `\` doubles; the JSON has no other characters that
/// need escaping, since serde_json already wrote control characters as `\n` or `\u00XX`).
pub fn encoded_size(item: &Item) -> usize {
    let json = serde_json::to_string(item).unwrap_or_default();
    json.len() + json.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
}

/// The opaque, URL-safe cursor that resumes a listing after the item `after_id`.
pub fn encode_cursor(after_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_VERSION}{after_id}"))
}

/// A `?cursor=` or `?limit=` the API cannot use. The message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ListParamError {
    #[error("cursor is not valid: pass the NextCursor of a previous GET unchanged, or leave cursor out to start from the beginning")]
    InvalidCursor,
    #[error("limit must be a whole number from 1 to {MAX_LIMIT}, got {0:?}")]
    InvalidLimit(String),
}

/// Decodes a cursor made by [`encode_cursor`] back into the id to resume after.
pub fn decode_cursor(cursor: &str) -> Result<String, ListParamError> {
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_CHARS {
        return Err(ListParamError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| ListParamError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| ListParamError::InvalidCursor)?;
    match text.strip_prefix(CURSOR_VERSION) {
        Some(id) if !id.is_empty() && id.len() <= MAX_ID_BYTES => Ok(id.to_string()),
        _ => Err(ListParamError::InvalidCursor),
    }
}

/// The page a `GET` asks for through its query parameters (`cursor`, `limit`; others ignored).
pub fn page_request(query: &BTreeMap<String, String>) -> Result<PageRequest, ListParamError> {
    let after = query.get("cursor").map(|c| decode_cursor(c)).transpose()?;
    let limit = match query.get("limit") {
        None => usize::MAX,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) && !raw.starts_with('+') => n,
            _ => {
                let shown: String = raw.chars().take(32).collect();
                return Err(ListParamError::InvalidLimit(shown));
            }
        },
    };
    Ok(PageRequest {
        after,
        limit,
        budget: ITEMS_BUDGET_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, description_chars: usize) -> Item {
        Item {
            id: id.into(),
            name: "n".into(),
            description: Some("d".repeat(description_chars)),
            url: None,
            created_at: None,
            created_by: None,
        }
    }

    fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_page_ended_early_resumes_after_its_last_item_and_an_empty_one_is_none() {
        let mut page = PageBuilder::new(&PageRequest::first());
        assert_eq!(PageBuilder::new(&PageRequest::first()).finish_early(), None);
        assert!(page.offer(item("a", 1)) && page.offer(item("b", 1)));
        let early = page.finish_early().expect("a page with items");
        assert_eq!(early.items.len(), 2);
        assert_eq!(early.next_after.as_deref(), Some("b"));
    }

    #[test]
    fn cursors_round_trip_and_are_url_safe() {
        for id in ["a", "0000-ffff", "é/+=?&", &"x".repeat(2048)] {
            let cursor = encode_cursor(id);
            assert!(cursor
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
            assert_eq!(decode_cursor(&cursor).as_deref(), Ok(id));
        }
    }

    #[test]
    fn forged_or_damaged_cursors_are_refused() {
        let too_long_id = URL_SAFE_NO_PAD.encode(format!("1:{}", "x".repeat(2049)));
        for bad in [
            "",
            "%%%",
            "not base64!",
            &URL_SAFE_NO_PAD.encode("2:abc"),
            &URL_SAFE_NO_PAD.encode("1:"),
            &URL_SAFE_NO_PAD.encode([0xff, 0xfe]),
            &too_long_id,
            &"A".repeat(5000),
        ] {
            assert_eq!(
                decode_cursor(bad),
                Err(ListParamError::InvalidCursor),
                "{bad}"
            );
        }
    }

    #[test]
    fn limit_is_a_whole_number_from_1_to_1000() {
        assert_eq!(page_request(&query(&[("limit", "1")])).unwrap().limit, 1);
        assert_eq!(
            page_request(&query(&[("limit", "1000")])).unwrap().limit,
            1000
        );
        for bad in [
            "0",
            "1001",
            "-1",
            "+5",
            "1.5",
            "",
            "ten",
            "5,6",
            "99999999999999999999",
        ] {
            let err = page_request(&query(&[("limit", bad)])).unwrap_err();
            assert_eq!(err, ListParamError::InvalidLimit(bad.into()));
            assert!(err.to_string().starts_with("limit must be"));
        }
        assert!(page_request(&query(&[("cursor", "@@")]))
            .unwrap_err()
            .to_string()
            .starts_with("cursor is not valid"));
    }

    #[test]
    fn a_page_stops_at_the_limit_and_knows_more_exist_only_when_one_was_refused() {
        let request = PageRequest {
            limit: 2,
            ..PageRequest::first()
        };
        let mut page = PageBuilder::new(&request);
        assert_eq!(page.wanted(), 3);
        assert!(page.offer(item("a", 1)));
        assert!(page.offer(item("b", 1)));
        let mut exact = PageBuilder::new(&request);
        assert!(exact.offer(item("a", 1)));
        assert!(exact.offer(item("b", 1)));
        assert_eq!(exact.finish().next_after, None, "nothing was refused");
        assert!(!page.offer(item("c", 1)));
        assert_eq!(page.finish().next_after.as_deref(), Some("b"));
    }

    #[test]
    fn a_page_stops_at_the_budget_but_always_takes_one_item() {
        let one = encoded_size(&item("a", 100)) + 1;
        let request = PageRequest {
            budget: one * 2,
            ..PageRequest::first()
        };
        let mut page = PageBuilder::new(&request);
        assert!(page.offer(item("a", 100)));
        assert!(page.offer(item("b", 100)));
        assert!(!page.offer(item("c", 100)));
        assert_eq!(page.finish().items.len(), 2);

        let tiny = PageRequest {
            budget: 1,
            ..PageRequest::first()
        };
        let mut page = PageBuilder::new(&tiny);
        assert!(page.offer(item("big", 1000)));
        assert!(!page.offer(item("next", 1)));
    }

    #[test]
    fn the_encoded_size_counts_the_escaping_inside_the_lambda_response() {
        let tricky = Item {
            description: Some("\"\\\n\u{1}é".into()),
            ..item("q", 0)
        };
        let body = serde_json::to_string(&tricky).unwrap();
        let envelope = serde_json::to_string(&body).unwrap();
        assert_eq!(encoded_size(&tricky), envelope.len() - 2);
    }
}
