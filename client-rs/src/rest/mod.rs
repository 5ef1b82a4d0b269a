//! REST calls to the gateway: the requests a client answers pushed messages with.
//!
//! Every call resolves to a [`Response`] holding the parsed JSON body, also for 4xx and 5xx
//! answers (as the Java client does); only transport failures are errors. Use
//! [`Response::error_for_status`] to turn a gateway error into [`Error::Gateway`](crate::Error).

mod error;
mod request;
mod response;

pub use error::MoleculerError;
pub use request::{Method, RequestBuilder};
pub use response::Response;

use serde::Serialize;

use crate::{Client, Error};

impl Client {
    /// Starts a request with per-request headers, query, body and timeout.
    /// `url` is absolute or relative to the client's base URL.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        RequestBuilder::new(self.clone(), method, url)
    }

    /// `GET url?query`.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`], [`Error::Request`] (transport), [`Error::Decode`] never (a body
    /// that is not JSON is returned as a JSON string).
    pub async fn get<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        query: &[(K, V)],
    ) -> Result<Response, Error> {
        self.request(Method::Get, url).query(query).send().await
    }

    /// `OPTIONS url?query`.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn options<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        query: &[(K, V)],
    ) -> Result<Response, Error> {
        self.request(Method::Options, url).query(query).send().await
    }

    /// `HEAD url?query`: status and headers only.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn head<K: AsRef<str>, V: AsRef<str>>(
        &self,
        url: &str,
        query: &[(K, V)],
    ) -> Result<Response, Error> {
        self.request(Method::Head, url).query(query).send().await
    }

    /// `POST url` with a JSON body.
    ///
    /// # Errors
    /// As [`get`](Self::get), plus [`Error::Decode`] if `body` does not serialize.
    pub async fn post<B: Serialize + ?Sized>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<Response, Error> {
        self.request(Method::Post, url).json(body).send().await
    }

    /// `PUT url` with a JSON body.
    ///
    /// # Errors
    /// As [`post`](Self::post).
    pub async fn put<B: Serialize + ?Sized>(&self, url: &str, body: &B) -> Result<Response, Error> {
        self.request(Method::Put, url).json(body).send().await
    }

    /// `PATCH url` with a JSON body.
    ///
    /// # Errors
    /// As [`post`](Self::post).
    pub async fn patch<B: Serialize + ?Sized>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<Response, Error> {
        self.request(Method::Patch, url).json(body).send().await
    }

    /// `DELETE url` with a JSON body (for a request without a body use
    /// [`request`](Self::request) with [`Method::Delete`]).
    ///
    /// # Errors
    /// As [`post`](Self::post).
    pub async fn delete<B: Serialize + ?Sized>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<Response, Error> {
        self.request(Method::Delete, url).json(body).send().await
    }
}
