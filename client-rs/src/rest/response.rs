//! The answer of a REST call.

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::MoleculerError;
use crate::Error;

/// A REST response: status, headers and the parsed body.
///
/// The body is the parsed JSON; `null` when empty (204, HEAD); a JSON string holding the text
/// when it is not JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Response {
    pub(crate) fn new(status: StatusCode, headers: HeaderMap, body: Value) -> Response {
        Response {
            status,
            headers,
            body,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// The first value of a header (case-insensitive name), if it is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// All headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The parsed body.
    pub fn json(&self) -> &Value {
        &self.body
    }

    /// Gives up the parsed body.
    pub fn into_json(self) -> Value {
        self.body
    }

    /// Deserializes the body as `T`.
    ///
    /// # Errors
    /// [`Error::Decode`] if the body does not fit `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(&self.body).map_err(|e| Error::Decode(e.to_string()))
    }

    /// The gateway error this response carries, if its status is 400 or more.
    pub fn error(&self) -> Option<MoleculerError> {
        let status = self.status.as_u16();
        (status >= 400).then(|| MoleculerError::from_body(status, &self.body))
    }

    /// `Ok(self)` for a status below 400, else the gateway's error.
    ///
    /// # Errors
    /// [`Error::Gateway`] with the [`MoleculerError`] of the body.
    pub fn error_for_status(self) -> Result<Response, Error> {
        match self.error() {
            Some(e) => Err(Error::Gateway(Box::new(e))),
            None => Ok(self),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn gateway_error_body_is_typed() {
        let body = json!({
            "name": "ValidationError", "message": "bad", "nodeID": "n1", "code": 422,
            "type": "VALIDATION_ERROR", "retryable": false, "stack": "...", "data": {"f": 1}
        });
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let r = Response::new(StatusCode::UNPROCESSABLE_ENTITY, headers, body);
        assert!(!r.is_success());
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let e = r.error().unwrap();
        assert_eq!(e.name, "ValidationError");
        assert_eq!(e.message, "bad");
        assert_eq!(e.code, 422);
        assert_eq!(e.kind, "VALIDATION_ERROR");
        assert_eq!(e.data, json!({"f": 1}));
        assert_eq!(e.node_id.as_deref(), Some("n1"));
        assert_eq!(e.status, 422);
        match r.error_for_status() {
            Err(Error::Gateway(g)) => assert_eq!(g.to_string(), "ValidationError (HTTP 422): bad"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn not_found_body_still_gives_an_error() {
        let r = Response::new(
            StatusCode::NOT_FOUND,
            HeaderMap::new(),
            json!({"success": false, "message": "Not Found: /p"}),
        );
        let e = r.error().unwrap();
        assert_eq!(
            (e.code, e.status, e.message.as_str()),
            (404, 404, "Not Found: /p")
        );
        let r = Response::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            json!("plain text"),
        );
        assert_eq!(r.error().unwrap().message, "plain text");
        let r = Response::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            HeaderMap::new(),
            json!({"code": "weird"}),
        );
        assert_eq!(
            r.error().unwrap().code,
            500,
            "malformed body: status stands in"
        );
    }

    #[test]
    fn success_parses_typed() {
        let r = Response::new(StatusCode::OK, HeaderMap::new(), json!({"n": 3}));
        assert!(r.error().is_none());
        #[derive(serde::Deserialize)]
        struct N {
            n: u8,
        }
        assert_eq!(r.parse::<N>().unwrap().n, 3);
        assert!(r.parse::<String>().is_err());
        assert_eq!(
            r.clone().error_for_status().unwrap().into_json(),
            json!({"n": 3})
        );
    }
}
