//! REST calls to the gateway: the requests a client answers pushed messages with.
//!
//! Every call is a [`RequestBuilder`]: add a query, headers, a body or a timeout, then
//! `.await` it (or call [`send`](RequestBuilder::send)). It resolves to a [`Response`] holding
//! the parsed JSON body, also for 4xx and 5xx answers (as the Java client does); only
//! transport failures are errors. Use [`Response::error_for_status`] to turn a gateway error
//! into [`Error::Gateway`](crate::Error).
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! # use moleculer_ws_client::{Client, StatusCode};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), moleculer_ws_client::Error> {
//! # let config = moleculer_ws_server::GatewayConfig::default().trigger(true);
//! # let gateway = moleculer_ws_server::Gateway::builder().config(config).build().unwrap()
//! #     .bind("127.0.0.1:0").await.unwrap();
//! # let base = format!("http://{}/", gateway.local_addr());
//! let client = Client::builder().base_url(&base).build()?;
//! let clients = client
//!     .get("/api/websocket/clients")
//!     .query(&[("verbose", "1")])
//!     .header("X-Request-Id", "42")
//!     .timeout(std::time::Duration::from_secs(5))
//!     .await?;
//! assert_eq!(clients.status(), StatusCode::OK);
//! assert!(clients.json().is_object());
//! # Ok(())
//! # }
//! ```

mod error;
#[cfg(feature = "rest")]
mod request;
#[cfg(feature = "rest")]
mod response;

pub use error::MoleculerError;
#[cfg(feature = "rest")]
pub use error::RequestError;
#[cfg(feature = "rest")]
pub use request::RequestBuilder;
#[cfg(feature = "rest")]
pub use response::Response;

#[cfg(feature = "rest")]
use http::Method;
#[cfg(feature = "rest")]
use serde::Serialize;

#[cfg(feature = "rest")]
use crate::Client;

#[cfg(feature = "rest")]
impl Client {
    /// Starts a request of any method. `url` is absolute or relative to the client's base URL.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// `GET url`; add a query with [`RequestBuilder::query`].
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// `HEAD url`: status and headers only.
    pub fn head(&self, url: &str) -> RequestBuilder {
        self.request(Method::HEAD, url)
    }

    /// `OPTIONS url`.
    pub fn options(&self, url: &str) -> RequestBuilder {
        self.request(Method::OPTIONS, url)
    }

    /// `DELETE url` (add a body with [`RequestBuilder::json`] if the route wants one).
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// `POST url` with a JSON body.
    pub fn post<B: Serialize + ?Sized>(&self, url: &str, body: &B) -> RequestBuilder {
        self.request(Method::POST, url).json(body)
    }

    /// `PUT url` with a JSON body.
    pub fn put<B: Serialize + ?Sized>(&self, url: &str, body: &B) -> RequestBuilder {
        self.request(Method::PUT, url).json(body)
    }

    /// `PATCH url` with a JSON body.
    pub fn patch<B: Serialize + ?Sized>(&self, url: &str, body: &B) -> RequestBuilder {
        self.request(Method::PATCH, url).json(body)
    }
}
