//! A guard for pagination loops: a misbehaving or hostile endpoint that hands out page tokens
//! forever (or the same token again) must not keep `up`, `down` or `plan` reading forever.
//!
//! ```ignore
//! let mut pages = Pages::new(|| format!("listing HTTP APIs to find {name}"));
//! let mut next = None;
//! loop {
//!     let page = client.get_apis().set_next_token(next).send().await?;
//!     // ...
//!     next = pages.next(page.next_token())?;
//!     if next.is_none() { break; }
//! }
//! ```

use std::collections::HashSet;

use thiserror::Error;

/// At most this many pages per listing. The stack's own listings hold a handful of items; an
/// account listing (`GetApis`, `DescribeLogGroups` by prefix) returns 25-50 items a page, so
/// this allows thousands of foreign APIs or log groups before stopping.
pub(crate) const MAX_PAGES: usize = 200;

/// Why a listing stopped before its last page.
#[derive(Debug, Error)]
pub(crate) enum PagesError {
    /// [`MAX_PAGES`] pages read and the endpoint still hands out a token.
    #[error(
        "{what}: stopped after {pages} pages, the endpoint keeps returning more; check the \
         endpoint (--endpoint-url / AWS_ENDPOINT_URL) and try again"
    )]
    Limit { what: String, pages: usize },
    /// A token came back a second time: the listing would loop.
    #[error(
        "{what}: the endpoint returned page token {token:?} twice after {pages} pages (the \
         listing would never end); check the endpoint (--endpoint-url / AWS_ENDPOINT_URL) and \
         try again"
    )]
    RepeatedToken {
        what: String,
        token: String,
        pages: usize,
    },
}

/// Counts the pages of one listing and remembers their tokens.
#[derive(Debug)]
pub(crate) struct Pages<W: Fn() -> String> {
    what: W,
    read: usize,
    tokens: HashSet<String>,
}

impl<W: Fn() -> String> Pages<W> {
    /// `what` names the listing for the error, e.g. "listing the routes of HTTP API ID".
    pub(crate) fn new(what: W) -> Self {
        Pages {
            what,
            read: 0,
            tokens: HashSet::new(),
        }
    }

    /// Call after each page with its next token: `Ok(Some(token))` to read on, `Ok(None)` at the
    /// end (no token, or an empty one), an error after [`MAX_PAGES`] pages or when a token
    /// comes back a second time (the listing would loop).
    pub(crate) fn next(&mut self, token: Option<&str>) -> Result<Option<String>, PagesError> {
        self.read += 1;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if self.read >= MAX_PAGES {
            return Err(PagesError::Limit {
                what: (self.what)(),
                pages: self.read,
            });
        }
        if !self.tokens.insert(token.to_string()) {
            return Err(PagesError::RepeatedToken {
                what: (self.what)(),
                token: token.to_string(),
                pages: self.read,
            });
        }
        Ok(Some(token.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_on_a_missing_or_empty_token() {
        let mut pages = Pages::new(|| "listing".to_string());
        assert_eq!(pages.next(Some("a")).unwrap().as_deref(), Some("a"));
        assert_eq!(pages.next(Some("")).unwrap(), None);
        let mut pages = Pages::new(|| "listing".to_string());
        assert_eq!(pages.next(None).unwrap(), None);
    }

    #[test]
    fn a_repeated_token_stops_the_listing_naming_it() {
        let mut pages = Pages::new(|| "listing HTTP APIs".to_string());
        pages.next(Some("t1")).unwrap();
        pages.next(Some("t2")).unwrap();
        let err = pages.next(Some("t1")).unwrap_err().to_string();
        assert!(err.starts_with("listing HTTP APIs: "), "{err}");
        assert!(err.contains("\"t1\" twice"), "{err}");
    }

    #[test]
    fn endless_fresh_tokens_stop_at_the_page_limit() {
        let mut pages = Pages::new(|| "listing".to_string());
        let mut read = 0;
        let err = loop {
            read += 1;
            match pages.next(Some(&format!("token-{read}"))) {
                Ok(_) => continue,
                Err(err) => break err,
            }
        };
        assert_eq!(read, MAX_PAGES);
        assert!(err.to_string().contains("200 pages"), "{err}");
    }
}
