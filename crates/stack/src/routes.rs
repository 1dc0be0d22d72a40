//! The route table of the wish-list API, shared by `up` (which creates it) and `dev` (which
//! serves it).

use serde::Serialize;

/// The path the wish-list API serves, as in the walkthrough.
pub const SERVICE_PATH: &str = "/wish-list-service";

/// How a route is authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum RouteAuth {
    /// Open to anyone (API Gateway's `NONE`).
    None,
    /// Guarded by the stack's JWT authorizer, with the stack's route scopes.
    Jwt,
}

/// One route of the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub auth: RouteAuth,
}

impl Route {
    /// API Gateway's route key, e.g. `POST /wish-list-service`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Finds the route serving `method` on `path`, as API Gateway matches exact routes.
    pub fn find(method: &str, path: &str) -> Option<&'static Route> {
        ROUTES
            .iter()
            .find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
    }
}

/// The route table of the wish-list API: reading is open, writing needs a valid token.
/// `up` creates exactly these routes and `dev` serves exactly these.
pub const ROUTES: &[Route] = &[
    Route {
        method: "GET",
        path: SERVICE_PATH,
        auth: RouteAuth::None,
    },
    Route {
        method: "POST",
        path: SERVICE_PATH,
        auth: RouteAuth::Jwt,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_is_open_and_post_is_guarded() {
        assert_eq!(
            Route::find("GET", SERVICE_PATH).unwrap().auth,
            RouteAuth::None
        );
        assert_eq!(
            Route::find("POST", SERVICE_PATH).unwrap().auth,
            RouteAuth::Jwt
        );
        assert_eq!(
            Route::find("POST", SERVICE_PATH).unwrap().key(),
            "POST /wish-list-service"
        );
        assert!(Route::find("DELETE", SERVICE_PATH).is_none());
        assert!(Route::find("GET", "/other").is_none());
    }
}
