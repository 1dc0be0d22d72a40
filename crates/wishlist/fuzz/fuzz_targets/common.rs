//! Shared by the targets: a poll loop for the API's futures (the memory store never waits) and
//! the checks every answer must pass.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wishlist::event::HttpApiResponse;

/// Runs a future that never waits on I/O (the memory store) to completion.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

/// Every answer is an HTTP status with a JSON body, as the Lambda returns it.
pub fn check_answer(response: &HttpApiResponse) {
    assert!(
        (200..600).contains(&response.status_code),
        "status {}",
        response.status_code
    );
    let body: serde_json::Value =
        serde_json::from_str(&response.body).expect("every answer's body is JSON");
    if response.status_code >= 400 {
        assert!(body["message"].is_string(), "error answers carry a message");
    }
    assert!(!response.is_base64_encoded);
}
