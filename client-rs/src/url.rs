//! URL handling: `http(s)` becomes `ws(s)`, relative URLs join a base, query pairs append.

use url::Url;

use crate::Error;

/// Parses `url`, joined against `base` when given and `url` is relative.
pub(crate) fn resolve(base: Option<&Url>, url: &str) -> Result<Url, Error> {
    let parsed = match base {
        Some(base) => base.join(url),
        None => Url::parse(url),
    };
    parsed.map_err(|e| Error::InvalidUrl(format!("{url}: {e}")))
}

/// The WebSocket URL for `url`: `http` becomes `ws`, `https` becomes `wss`.
#[cfg_attr(
    not(all(feature = "tokio-runtime", not(target_arch = "wasm32"))),
    allow(dead_code)
)]
pub(crate) fn to_ws(mut url: Url) -> Result<Url, Error> {
    let scheme = match url.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => {
            return Err(Error::InvalidUrl(format!(
                "{url}: scheme {other:?} is not ws, wss, http or https"
            )))
        }
    };
    url.set_scheme(scheme)
        .map_err(|()| Error::InvalidUrl(format!("{url}: cannot use scheme {scheme}")))?;
    Ok(url)
}

/// The WebSocket URLs of one connection (`urls` resolved against `base`, `http(s)` as
/// `ws(s)`), each with the query pairs; at least one.
#[cfg_attr(
    not(any(
        all(feature = "tokio-runtime", not(target_arch = "wasm32")),
        all(feature = "browser", target_arch = "wasm32")
    )),
    allow(dead_code)
)]
pub(crate) fn ws_urls(
    base: Option<&Url>,
    urls: &[&str],
    query: &[(String, String)],
) -> Result<Vec<Url>, Error> {
    if urls.is_empty() {
        return Err(Error::InvalidUrl(
            "no URL: a WebSocket needs at least one".into(),
        ));
    }
    urls.iter()
        .map(|u| {
            let mut url = to_ws(resolve(base, u)?)?;
            append_query(&mut url, query);
            Ok(url)
        })
        .collect()
}

/// The HTTP URL for a REST call: only `http` and `https` are accepted.
#[cfg_attr(not(feature = "rest"), allow(dead_code))]
pub(crate) fn check_http(url: Url) -> Result<Url, Error> {
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(Error::InvalidUrl(format!(
            "{url}: scheme {other:?} is not http or https"
        ))),
    }
}

/// Appends query pairs (percent-encoded) to `url`.
pub(crate) fn append_query<K: AsRef<str>, V: AsRef<str>>(url: &mut Url, pairs: &[(K, V)]) {
    if pairs.is_empty() {
        return;
    }
    let mut q = url.query_pairs_mut();
    for (k, v) in pairs {
        q.append_pair(k.as_ref(), v.as_ref());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn http_becomes_ws() {
        let u = to_ws(resolve(None, "http://h:3000/ws/chat?x=1").unwrap()).unwrap();
        assert_eq!(u.as_str(), "ws://h:3000/ws/chat?x=1");
        let u = to_ws(resolve(None, "https://h/ws/chat").unwrap()).unwrap();
        assert_eq!(u.as_str(), "wss://h/ws/chat");
        let u = to_ws(resolve(None, "wss://h/a").unwrap()).unwrap();
        assert_eq!(u.as_str(), "wss://h/a");
        assert!(matches!(
            to_ws(resolve(None, "ftp://h/a").unwrap()),
            Err(Error::InvalidUrl(_))
        ));
        assert!(matches!(
            resolve(None, "not a url"),
            Err(Error::InvalidUrl(_))
        ));
    }

    #[test]
    fn relative_urls_join_the_base() {
        let base = Url::parse("http://h:3000/").unwrap();
        assert_eq!(
            resolve(Some(&base), "/api/chat/send").unwrap().as_str(),
            "http://h:3000/api/chat/send"
        );
        assert_eq!(
            resolve(Some(&base), "ws://o/x").unwrap().as_str(),
            "ws://o/x"
        );
    }

    #[test]
    fn query_pairs_are_encoded() {
        let mut u = Url::parse("http://h/p?a=1").unwrap();
        append_query(&mut u, &[("b", "x y"), ("c", "&")]);
        assert_eq!(u.as_str(), "http://h/p?a=1&b=x+y&c=%26");
        let empty: [(&str, &str); 0] = [];
        append_query(&mut u, &empty);
        assert!(check_http(u).is_ok());
        assert!(check_http(Url::parse("ws://h/").unwrap()).is_err());
    }
}
