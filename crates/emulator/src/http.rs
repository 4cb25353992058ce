//! The HTTP(S) servers: accept loop, fault injection, request counters, and helpers shared by the token service
//! and the managed-identity endpoints.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::identity::Identity;
use crate::secret::Secret;
use crate::sts_error::StsError;

/// Which of the emulator's HTTP services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpService {
    /// The HTTPS token service (v1, v2.0, UserRealm, device code, discovery, JWKS).
    TokenService,
    /// The instance-metadata (IMDS) managed-identity endpoint.
    Imds,
    /// The App Service managed-identity endpoint (`IDENTITY_ENDPOINT`).
    AppService,
}

/// Which endpoint a request hit (for [`HttpStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /<tenant>/oauth2/token` (v1, what the driver uses).
    TokenV1,
    /// `POST /<tenant>/oauth2/v2.0/token` (what azure_identity uses).
    TokenV2,
    /// `POST /<tenant>/oauth2/v2.0/devicecode`.
    DeviceCode,
    /// `GET /common/UserRealm/<upn>`.
    UserRealm,
    /// OpenID discovery documents (v1 and v2.0).
    OpenIdConfiguration,
    /// JWKS.
    Jwks,
    /// `GET /metadata/identity/oauth2/token` (instance-metadata form).
    ImdsToken,
    /// `GET <IDENTITY_ENDPOINT>` (App Service form).
    AppServiceToken,
    /// Anything else (answered 404).
    Unknown,
}

/// A fault to inject into the HTTP services.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpFault {
    /// Close the connection without answering (the client sees the connection reset or closed).
    CloseConnection,
    /// Answer after this delay (the request is then handled normally, unless another fault applies).
    Delay(Duration),
    /// Answer with this status and an Entra-shaped `server_error` body.
    Status(u16),
    /// Answer 429 with `Retry-After: <secs>`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after: Duration,
    },
    /// Answer 200 with a truncated, unparseable JSON body (no `access_token`).
    MalformedJson,
}

/// How long a fault stays active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// For the next `n` requests to the target.
    Next(u32),
    /// Until [`HttpFaults::clear`].
    UntilCleared,
}

#[derive(Debug, Clone)]
struct ActiveFault {
    target: Option<HttpService>,
    fault: HttpFault,
    remaining: Option<u32>,
}

/// Fault knobs for the HTTP services (cheap `Clone` handle; all clones share state).
#[derive(Debug, Clone, Default)]
pub struct HttpFaults {
    active: Arc<Mutex<Vec<ActiveFault>>>,
    refusing: Arc<Mutex<std::collections::HashSet<HttpService>>>,
    changed: Arc<tokio::sync::Notify>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl HttpFaults {
    /// Injects `fault` into `target` (`None`: every HTTP service) for `times`. Faults stack; the first
    /// non-delay fault that matches a request decides its answer, all matching delays add up.
    pub fn inject(&self, target: Option<HttpService>, fault: HttpFault, times: Times) {
        let remaining = match times {
            Times::Next(n) => Some(n),
            Times::UntilCleared => None,
        };
        lock(&self.active).push(ActiveFault {
            target,
            fault,
            remaining,
        });
    }

    /// The token service closes connections for the next `n` requests ("down").
    pub fn token_service_down(&self, times: Times) {
        self.inject(
            Some(HttpService::TokenService),
            HttpFault::CloseConnection,
            times,
        );
    }

    /// Closes `service`'s listening socket, so that new connections are refused (`ECONNREFUSED`, the driver's
    /// "Error 7"), until called again with `false` or [`HttpFaults::clear`]; the same port is bound again then.
    /// Connections already open are not affected.
    pub fn refuse_connections(&self, service: HttpService, refuse: bool) {
        if refuse {
            lock(&self.refusing).insert(service);
        } else {
            lock(&self.refusing).remove(&service);
        }
        self.changed.notify_waiters();
    }

    /// Whether `service` currently refuses connections.
    pub fn is_refusing(&self, service: HttpService) -> bool {
        lock(&self.refusing).contains(&service)
    }

    /// Removes every fault (connections are accepted again).
    pub fn clear(&self) {
        lock(&self.active).clear();
        lock(&self.refusing).clear();
        self.changed.notify_waiters();
    }

    /// Removes the faults of one service.
    pub fn clear_service(&self, service: HttpService) {
        lock(&self.active).retain(|f| f.target != Some(service));
        lock(&self.refusing).remove(&service);
        self.changed.notify_waiters();
    }

    /// How many faults are still active.
    pub fn active(&self) -> usize {
        lock(&self.active).len()
    }

    /// The faults that apply to one request to `service` (consuming one use of each).
    pub(crate) fn take(&self, service: HttpService) -> (Duration, Option<HttpFault>) {
        let mut active = lock(&self.active);
        let mut delay = Duration::ZERO;
        let mut decisive = None;
        for f in active.iter_mut() {
            if f.target.is_some_and(|t| t != service) {
                continue;
            }
            match &f.fault {
                HttpFault::Delay(d) => delay += *d,
                other if decisive.is_none() => decisive = Some(other.clone()),
                _ => continue,
            }
            if let Some(n) = f.remaining.as_mut() {
                *n = n.saturating_sub(1);
            }
        }
        active.retain(|f| f.remaining != Some(0));
        (delay, decisive)
    }
}

/// Request counters per endpoint (cheap `Clone` handle).
#[derive(Debug, Clone, Default)]
pub struct HttpStats {
    counts: Arc<Mutex<HashMap<Endpoint, u64>>>,
}

impl HttpStats {
    /// Requests that reached `endpoint` (faulted ones included).
    pub fn count(&self, endpoint: Endpoint) -> u64 {
        lock(&self.counts).get(&endpoint).copied().unwrap_or(0)
    }

    /// Token requests of every kind (v1, v2.0, IMDS, App Service).
    pub fn token_requests(&self) -> u64 {
        [
            Endpoint::TokenV1,
            Endpoint::TokenV2,
            Endpoint::ImdsToken,
            Endpoint::AppServiceToken,
        ]
        .iter()
        .map(|e| self.count(*e))
        .sum()
    }

    /// Sets every counter to zero.
    pub fn reset(&self) {
        lock(&self.counts).clear();
    }

    pub(crate) fn record(&self, endpoint: Endpoint) {
        *lock(&self.counts).entry(endpoint).or_insert(0) += 1;
    }
}

/// What the request handlers share.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) identity: Identity,
    pub(crate) faults: HttpFaults,
    pub(crate) stats: HttpStats,
    pub(crate) identity_header: Secret,
}

/// A parsed request: method, path segments, query and body. No `Debug`: bodies and headers carry secrets.
pub(crate) struct Req {
    pub(crate) method: hyper::Method,
    pub(crate) segments: Vec<String>,
    pub(crate) query: HashMap<String, String>,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: Bytes,
}

impl Req {
    pub(crate) fn form(&self) -> HashMap<String, String> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

pub(crate) type Resp = Response<Full<Bytes>>;

/// Builds a JSON answer.
pub(crate) fn json(status: u16, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store, no-cache"),
    );
    resp
}

pub(crate) fn sts_error(err: &StsError) -> Resp {
    json(err.status, err.to_json())
}

/// The connection is to be closed without an answer.
#[derive(Debug)]
pub(crate) struct CloseConnection;

impl std::fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by an injected fault")
    }
}

impl std::error::Error for CloseConnection {}

const MAX_BODY: usize = 256 * 1024;

async fn handle(
    req: Request<Incoming>,
    service: HttpService,
    state: AppState,
) -> Result<Resp, CloseConnection> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(json(413, r#"{"error":"invalid_request","error_description":"request body too large or unreadable"}"#.to_owned())),
    };
    let segments = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let req = Req {
        method: parts.method,
        segments,
        query,
        headers: parts.headers,
        body,
    };
    let endpoint = match service {
        HttpService::TokenService => crate::sts::classify(&req),
        HttpService::Imds | HttpService::AppService => crate::msi::classify(&req),
    };
    state.stats.record(endpoint);
    let (delay, fault) = state.faults.take(service);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let resp = match fault {
        Some(HttpFault::CloseConnection) => return Err(CloseConnection),
        Some(HttpFault::Status(status)) => sts_error(&StsError::new(
            status,
            "server_error",
            90100,
            "An injected fault answered this request with an error status.",
        )),
        Some(HttpFault::TooManyRequests { retry_after }) => {
            let mut resp = sts_error(&StsError::new(
                429,
                "temporarily_unavailable",
                90055,
                "The request was throttled. Retry after the interval in the Retry-After header.",
            ));
            if let Ok(v) = hyper::header::HeaderValue::from_str(&retry_after.as_secs().to_string())
            {
                resp.headers_mut().insert(hyper::header::RETRY_AFTER, v);
            }
            resp
        }
        Some(HttpFault::MalformedJson) => {
            json(200, r#"{"token_type":"Bearer","expires_in":"35"#.to_owned())
        }
        Some(HttpFault::Delay(_)) | None => match service {
            HttpService::TokenService => crate::sts::route(&req, endpoint, &state),
            HttpService::Imds | HttpService::AppService => {
                crate::msi::route(&req, endpoint, &state)
            }
        },
    };
    tracing::debug!(
        ?service,
        ?endpoint,
        status = resp.status().as_u16(),
        "answered"
    );
    Ok(resp)
}

fn percent_decode(s: &str) -> String {
    // form_urlencoded decodes `%xx` (and `+`, which never appears in the UPNs and GUIDs of our paths).
    form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Serves `service` on `listener` (TLS when `tls` is set) until `shutdown` turns true.
pub(crate) fn spawn_server(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: HttpService,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let faults = state.faults.clone();
        let addr = listener.local_addr().ok();
        let mut listener = Some(listener);
        loop {
            // Created before the check so that a change made in between still wakes us (tokio's Notify contract).
            let changed = faults.changed.notified();
            let refusing = faults.is_refusing(service);
            let current = match (refusing, listener.take(), addr) {
                (true, Some(open), _) => {
                    drop(open);
                    tracing::debug!(?service, "listener closed: refusing connections");
                    None
                }
                (false, None, Some(addr)) => match TcpListener::bind(addr).await {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!(?service, %addr, error = %e, "cannot listen again; retrying");
                        None
                    }
                },
                (_, kept, _) => kept,
            };
            let Some(open) = current else {
                tokio::select! {
                    () = changed => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.changed() => break,
                }
                continue;
            };
            let accepted = tokio::select! {
                a = open.accept() => a,
                () = changed => {
                    listener = Some(open);
                    continue;
                }
                _ = shutdown.changed() => break,
            };
            listener = Some(open);
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(?service, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let tls = tls.clone();
            let state = state.clone();
            let mut shutdown = shutdown.clone();
            tokio::spawn(async move {
                let serve = async move {
                    let svc =
                        hyper::service::service_fn(move |req| handle(req, service, state.clone()));
                    let builder = hyper::server::conn::http1::Builder::new();
                    let result = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls_stream) => {
                                builder
                                    .serve_connection(TokioIo::new(tls_stream), svc)
                                    .await
                            }
                            Err(e) => {
                                tracing::debug!(?service, %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                        },
                        None => builder.serve_connection(TokioIo::new(stream), svc).await,
                    };
                    if let Err(e) = result {
                        tracing::debug!(?service, %peer, error = %e, "connection ended");
                    }
                };
                tokio::select! {
                    () = serve => {}
                    _ = shutdown.changed() => {}
                }
            });
        }
    })
}

/// Binds a listener, naming the address in the error.
pub(crate) async fn bind(
    addr: SocketAddr,
    what: &'static str,
) -> Result<TcpListener, crate::EmulatorError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| crate::EmulatorError::Bind {
            what,
            addr,
            source: Arc::new(source),
        })
}
