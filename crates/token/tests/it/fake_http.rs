//! A fake azure_core `HttpClient`: records requests, answers from a script.

use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{
    AsyncRawResponse, Body, ClientOptions, HttpClient, Request, RetryOptions, StatusCode, Transport,
};
use mssql_entra_token::sources::HttpOptions;
use std::sync::{Arc, Mutex};

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub url: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn form(&self, key: &str) -> Option<String> {
        form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    pub fn query(&self, key: &str) -> Option<String> {
        let url = azure_core::http::Url::parse(&self.url).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    pub fn header(&self, key: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// The answer: status, headers, body.
pub type Answer = (u16, Vec<(&'static str, String)>, String);

type Responder = dyn Fn(&Seen, usize) -> Answer + Send + Sync;

pub struct FakeHttp {
    pub seen: Mutex<Vec<Seen>>,
    responder: Box<Responder>,
}

impl std::fmt::Debug for FakeHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeHttp")
    }
}

impl FakeHttp {
    /// `responder(request, n)` answers the n-th (0-based) request.
    pub fn new(responder: impl Fn(&Seen, usize) -> Answer + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::new(Vec::new()),
            responder: Box::new(responder),
        })
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// HttpOptions that route every request to this fake, without azure_core retries, with the authority
    /// host `https://login.fake.test`.
    pub fn options(self: &Arc<Self>) -> HttpOptions {
        let client_options = ClientOptions {
            transport: Some(Transport::new(self.clone())),
            retry: RetryOptions::none(),
            ..Default::default()
        };
        HttpOptions::default()
            .with_client_options(client_options)
            .with_authority_host("https://login.fake.test")
    }
}

#[async_trait::async_trait]
impl HttpClient for FakeHttp {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let body = match request.body() {
            Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let seen = Seen {
            method: format!("{:?}", request.method()),
            url: request.url().to_string(),
            path: request.url().path().to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.as_str().to_owned()))
                .collect(),
            body,
        };
        let n = {
            let mut all = self.seen.lock().unwrap();
            all.push(seen.clone());
            all.len() - 1
        };
        let (status, headers, body) = (self.responder)(&seen, n);
        let mut h = Headers::new();
        h.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
        for (k, v) in headers {
            h.insert(HeaderName::from_static(k), HeaderValue::from(v));
        }
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::from(status),
            h,
            body.into_bytes(),
        ))
    }
}

/// An Entra ID token response.
pub fn entra_token(access_token: &str, expires_in: i64) -> Answer {
    (
        200,
        vec![],
        format!(
            r#"{{"token_type":"Bearer","expires_in":{expires_in},"ext_expires_in":{expires_in},"access_token":"{access_token}"}}"#
        ),
    )
}

/// An Entra ID error response.
pub fn entra_error(
    status: u16,
    error: &str,
    code: u32,
    headers: Vec<(&'static str, String)>,
) -> Answer {
    (
        status,
        headers,
        format!(
            r#"{{"error":"{error}","error_description":"AADSTS{code}: {error} happened.","error_codes":[{code}]}}"#
        ),
    )
}

/// A fake JWT with the given claims JSON; the signature part is junk.
pub fn jwt(claims: &str) -> String {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.c2lnbmF0dXJl",
        e.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        e.encode(claims)
    )
}
