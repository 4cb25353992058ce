//! One TDS session: an explicit state machine from the first byte to the last batch.
//!
//! ```text
//! Start ──0x16──▶ TlsFirst (strict) ─┐
//!   └──0x12──────────────────────────┴▶ PreLogin ─▶ [wrapped TLS] ─▶ Login7 ─┬─▶ LoggedIn ─▶ batches…
//!                                                                           └─▶ FedAuthPending ─0x08─▶ LoggedIn
//! ```
//! Any failure before `LoggedIn` answers the client with an ERROR where the protocol allows it, then closes.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info};

use super::batch::{self, Expr, Statement};
use super::db::{DbError, SessionUser};
use super::faults::LoginStage;
use super::login7::{self, BearerToken, FedAuthRequest, Login7, SessionRecovery};
use super::prelogin::{self, Negotiated, ServerPrelogin, ENCRYPT_NOT_SUP};
use super::proto::{
    self, PacketType, ServerMessage, Tokens, Value, CURCMD_SELECT, DEFAULT_PACKET_SIZE, DONE_ATTN,
    DONE_COUNT, DONE_ERROR, DONE_FINAL, DONE_MORE, MAX_PACKET_SIZE, MIN_PACKET_SIZE,
    STATUS_RESET_CONNECTION, STATUS_RESET_SKIP_TRAN,
};
use super::wire::{Message, Wire, WireError};
use super::{Databases, EchoPolicy, Encryption, SqlFaults, SqlStats};
use crate::model::{LoginAuthority, Principal, TokenRejection};
use crate::Secret;

/// The SQL Server version the emulator reports (Azure SQL Database's 12.0.2000.8).
pub(crate) const SERVER_VERSION: (u8, u8, u16) = (12, 0, 2000);
const TDS_74: u32 = 0x7400_0004;
const TDS_80: u32 = 0x0800_0000;
const TOKEN_PRINCIPAL: &str = "<token-identified principal>";

/// Everything sessions share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) server_name: String,
    pub(crate) encryption: Encryption,
    pub(crate) echo: EchoPolicy,
    pub(crate) send_nonce: bool,
    pub(crate) session_recovery: bool,
    pub(crate) login_timeout: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) tls_7x: Arc<ServerConfig>,
    pub(crate) tls_strict: Arc<ServerConfig>,
    pub(crate) authority: Arc<dyn LoginAuthority>,
    pub(crate) databases: Databases,
    pub(crate) faults: SqlFaults,
    pub(crate) stats: SqlStats,
    pub(crate) next_spid: AtomicU16,
}

/// How the session's bytes are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Clear,
    LoginOnly,
    FullTls,
    Strict,
}

/// Why a login ended without a session.
#[derive(Debug)]
enum LoginEnd {
    /// The client was answered with an error (or deliberately cut off by a fault knob); not a protocol error.
    Refused,
    /// Bad bytes, TLS failure or a closed socket.
    Broken(WireError),
}

impl From<WireError> for LoginEnd {
    fn from(e: WireError) -> Self {
        LoginEnd::Broken(e)
    }
}

/// A logged-in session.
#[derive(Debug)]
struct Session {
    spid: u16,
    packet_size: usize,
    principal: Principal,
    database: String,
    who: SessionUser,
    transaction: Option<u64>,
    next_transaction: u64,
    /// Ended by [`SqlFaults::kill_sessions`].
    killed: bool,
}

pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(shared: Arc<Shared>, stream: S) {
    let counters = &shared.stats.counters;
    counters.connections.fetch_add(1, Ordering::Relaxed);
    counters.open_sessions.fetch_add(1, Ordering::Relaxed);
    let spid = shared.next_spid.fetch_add(1, Ordering::Relaxed);
    let mut wire = Wire::new(stream, shared.max_message_size);
    let outcome = tokio::time::timeout(shared.login_timeout, login(&shared, &mut wire, spid)).await;
    let mut killed = false;
    let result = match outcome {
        Ok(Ok(mut session)) => {
            let served = serve(&shared, &mut wire, &mut session).await;
            killed = session.killed;
            served
        }
        Ok(Err(LoginEnd::Refused)) => Ok(()),
        Ok(Err(LoginEnd::Broken(e))) => Err(e),
        Err(_) => Err(WireError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("login not finished within {:?}", shared.login_timeout),
        ))),
    };
    match result {
        Ok(()) | Err(WireError::Closed) => debug!(spid, "session ended"),
        Err(e) => {
            counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
            info!(spid, error = %e, "session ended by an error");
        }
    }
    // A killed session ends like a broken link: no TLS close_notify, only the socket's close when `wire` drops.
    // (The driver probes an idle socket before reusing it; a pending close_notify would read as "alive".)
    if !killed {
        wire.shutdown().await;
    }
    drop(wire);
    counters.open_sessions.fetch_sub(1, Ordering::Relaxed);
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    tokens: Tokens,
    packet_size: usize,
    spid: u16,
) -> Result<(), WireError> {
    wire.write_message(
        PacketType::TabularResult,
        &tokens.into_bytes(),
        packet_size,
        spid,
    )
    .await
}

/// Applies the fault knobs for `stage`: `true` means the session must end now.
async fn fault_at<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    wire: &mut Wire<S>,
    stage: LoginStage,
) -> Result<bool, WireError> {
    if shared.faults.take_drop(stage) {
        debug!(?stage, "fault: dropping the connection");
        return Ok(true);
    }
    if shared.faults.take_garbage(stage) {
        debug!(?stage, "fault: sending garbage");
        wire.write_raw_or_tls(b"\xDE\xAD\xBE\xEF mssql-entra-emulator fault: this is not TDS\r\n")
            .await?;
        return Ok(true);
    }
    Ok(false)
}

async fn login<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    wire: &mut Wire<S>,
    spid: u16,
) -> Result<Session, LoginEnd> {
    // Start: TLS first (TDS 8 strict) or a 7.x PRELOGIN.
    let first = wire.peek_byte().await?;
    if first != 0x16 && first != PacketType::PreLogin.to_byte() {
        return Err(LoginEnd::Broken(WireError::Parse(proto::ParseError::new(
            "first packet",
            format!("a session starts with PRELOGIN (0x12) or a TLS ClientHello (0x16), not 0x{first:02X}"),
        ))));
    }
    let strict = first == 0x16;
    if strict {
        wire.tls_handshake(shared.tls_strict.clone(), false).await?;
        debug!(spid, alpn = ?wire.alpn().map(|a| String::from_utf8_lossy(&a).into_owned()), "strict TLS established");
    }

    // PreLogin.
    let msg = wire.read_message().await?;
    if msg.ty != PacketType::PreLogin {
        return Err(unexpected("PRELOGIN", &msg));
    }
    let client = prelogin::parse(&msg.payload).map_err(WireError::from)?;
    if fault_at(shared, wire, LoginStage::AfterPrelogin).await? {
        return Err(LoginEnd::Refused);
    }
    let (answer, transport) = if strict {
        (ENCRYPT_NOT_SUP, Some(Transport::Strict))
    } else {
        let (answer, mode) = prelogin::negotiate(
            client.encryption.unwrap_or(ENCRYPT_NOT_SUP),
            shared.encryption,
        );
        let transport = mode.map(|m| match m {
            Negotiated::None => Transport::Clear,
            Negotiated::LoginOnly => Transport::LoginOnly,
            Negotiated::Full => Transport::FullTls,
        });
        (answer, transport)
    };
    let server_nonce = shared.send_nonce.then(random_nonce);
    let response = prelogin::build(&ServerPrelogin {
        version: SERVER_VERSION,
        encryption: answer,
        fedauth_required: true,
        nonce: server_nonce,
    });
    wire.write_message(
        PacketType::TabularResult,
        &response,
        DEFAULT_PACKET_SIZE,
        spid,
    )
    .await?;
    let Some(transport) = transport else {
        // The client will give up (it insisted on encryption the server does not offer, or the reverse).
        let _ = wire.read_message().await;
        return Err(LoginEnd::Refused);
    };
    if matches!(transport, Transport::FullTls | Transport::LoginOnly) {
        wire.tls_handshake(shared.tls_7x.clone(), true).await?;
        if transport == Transport::LoginOnly {
            wire.drop_tls_after_next_packet();
        }
    }

    // Login7.
    let msg = wire.read_message().await?;
    if msg.ty != PacketType::Login7 {
        return Err(unexpected("LOGIN7", &msg));
    }
    delay(shared).await;
    let login = match login7::parse(&msg.payload, server_nonce.is_some()) {
        Ok(l) => l,
        Err(e) => {
            let text = format!(
                "The incoming tabular data stream (TDS) protocol stream is incorrect: {e}."
            );
            refuse(shared, wire, spid, &[ServerMessage::new(4002, 1, 16, text)]).await?;
            return Err(LoginEnd::Refused);
        }
    };
    debug!(spid, database = %login.database, app = %login.app_name, features = ?login.feature_ids, "LOGIN7");
    if fault_at(shared, wire, LoginStage::AfterLogin7).await? {
        return Err(LoginEnd::Refused);
    }
    let fully_encrypted = matches!(transport, Transport::FullTls | Transport::Strict);
    let token =
        match fedauth_token(shared, wire, spid, &login, fully_encrypted, server_nonce).await? {
            Some(t) => t,
            None => return Err(LoginEnd::Refused),
        };

    // Validate the token and map it to a database user.
    let principal = match shared.authority.validate(token.expose()) {
        Ok(p) => p,
        Err(rejection) => {
            refuse(shared, wire, spid, &[login_failed(Some(&rejection))]).await?;
            return Err(LoginEnd::Refused);
        }
    };
    let requested = if login.database.is_empty() {
        "master"
    } else {
        login.database.as_str()
    };
    let Some(database) = shared.databases.canonical_name(requested) else {
        let text = format!(
            "Cannot open database \"{requested}\" requested by the login. The login failed."
        );
        refuse(
            shared,
            wire,
            spid,
            &[ServerMessage::new(4060, 1, 11, text), login_failed(None)],
        )
        .await?;
        return Err(LoginEnd::Refused);
    };
    if shared.faults.take_transient() {
        let text = format!(
            "Database '{database}' on server '{}' is not currently available. Please retry the connection later. \
             If the problem persists, contact customer support, and provide them the session tracing ID of '{}'.",
            shared.server_name,
            uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
        );
        refuse(
            shared,
            wire,
            spid,
            &[ServerMessage::new(40613, 1, 17, text)],
        )
        .await?;
        return Err(LoginEnd::Refused);
    }
    let sid = principal.sid();
    let is_admin = shared
        .databases
        .entra_admin()
        .is_some_and(|a| a.sid() == sid);
    let who = if is_admin {
        SessionUser::Dbo
    } else if let Some(user) = shared.databases.user_by_sid(&database, &sid) {
        SessionUser::User(user.name.to_lowercase())
    } else {
        debug!(spid, %database, "no database user for the principal");
        refuse(shared, wire, spid, &[login_failed(None)]).await?;
        return Err(LoginEnd::Refused);
    };

    // LoggedIn: the response of tds-notes §5.7.
    let packet_size = match login.packet_size as usize {
        0 => DEFAULT_PACKET_SIZE,
        n => n.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE),
    };
    let tds_version = if login.tds_version == TDS_80 {
        TDS_80
    } else {
        TDS_74
    };
    let name = &shared.server_name;
    let mut t = Tokens::new();
    t.env_change_text(1, &database, "master");
    t.info(
        &ServerMessage::new(
            5701,
            2,
            0,
            format!("Changed database context to '{database}'."),
        ),
        name,
    );
    t.env_change_bytes(7, &proto::COLLATION, &[]);
    t.env_change_text(2, "us_english", "");
    t.info(
        &ServerMessage::new(5703, 1, 0, "Changed language setting to us_english."),
        name,
    );
    t.login_ack(tds_version, SERVER_VERSION);
    t.env_change_text(
        4,
        &packet_size.to_string(),
        &DEFAULT_PACKET_SIZE.to_string(),
    );
    // Connection resiliency: acknowledged with an empty initial session state (no SET options differ from the
    // defaults). Without the ack the driver never reconnects.
    let recovery = login
        .session_recovery
        .as_ref()
        .filter(|_| shared.session_recovery);
    t.feature_ext_ack(client.nonce.as_ref(), recovery.map(|_| &[][..]));
    t.done(DONE_FINAL, 0, 0);
    // Counted before the client can see the answer, so tests reading the counters never race it.
    let counters = &shared.stats.counters;
    counters.logins_ok.fetch_add(1, Ordering::Relaxed);
    if let Some(SessionRecovery::Reconnect(state)) = recovery {
        debug!(
            spid,
            initial_database = %state.initial_database,
            current_database = ?state.current_database,
            states = state.states.len(),
            "session recovery login"
        );
        counters
            .recovered_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Secret::new(token.expose()));
        counters.recovered_logins.fetch_add(1, Ordering::Relaxed);
    }
    send(wire, t, DEFAULT_PACKET_SIZE, spid).await?;
    info!(spid, %database, login = %principal.login_name(), "login succeeded");
    Ok(Session {
        spid,
        packet_size,
        principal,
        database,
        who,
        transaction: None,
        next_transaction: 1,
        killed: false,
    })
}

/// Runs the FEDAUTH part of the login; `None` when the client was refused.
async fn fedauth_token<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    wire: &mut Wire<S>,
    spid: u16,
    login: &Login7,
    fully_encrypted: bool,
    server_nonce: Option<[u8; 32]>,
) -> Result<Option<BearerToken>, LoginEnd> {
    let (echo, request) = match &login.fedauth {
        None => {
            let user = &login.user_name;
            let text = format!(
                "Login failed for user '{user}'. Reason: Azure Active Directory only authentication is enabled. \
                 Please contact your system administrator."
            );
            refuse(
                shared,
                wire,
                spid,
                &[ServerMessage::new(18456, 1, 14, text)],
            )
            .await?;
            return Ok(None);
        }
        Some(FedAuthRequest::Unsupported { library }) => {
            let text = format!(
                "Login failed for user '{TOKEN_PRINCIPAL}'. The federated authentication library 0x{library:02X} \
                 is not supported by the emulator (use an access token or an ActiveDirectory* mode)."
            );
            refuse(
                shared,
                wire,
                spid,
                &[ServerMessage::new(18456, 1, 14, text)],
            )
            .await?;
            return Ok(None);
        }
        Some(r @ FedAuthRequest::SecurityToken { echo, .. })
        | Some(r @ FedAuthRequest::Msal { echo, .. }) => (*echo, r),
    };
    let check_echo = match shared.echo {
        EchoPolicy::Never => false,
        EchoPolicy::WhenFullyEncrypted => fully_encrypted,
        EchoPolicy::Always => true,
    };
    if check_echo && !echo {
        let text = format!(
            "Login failed for user '{TOKEN_PRINCIPAL}'. The fFedAuthEcho bit of LOGIN7 is 0 although the server \
             sent FEDAUTHREQUIRED=1."
        );
        refuse(
            shared,
            wire,
            spid,
            &[ServerMessage::new(18456, 1, 14, text)],
        )
        .await?;
        return Ok(None);
    }
    match request {
        FedAuthRequest::SecurityToken { token, nonce, .. } => {
            if nonce.is_some() && *nonce != server_nonce {
                let text = format!("Login failed for user '{TOKEN_PRINCIPAL}'. The nonce in LOGIN7 does not match.");
                refuse(
                    shared,
                    wire,
                    spid,
                    &[ServerMessage::new(18456, 1, 14, text)],
                )
                .await?;
                return Ok(None);
            }
            Ok(Some(token.clone()))
        }
        FedAuthRequest::Msal { .. } => {
            // FedAuthPending: FEDAUTHINFO alone in its message, no DONE.
            let mut t = Tokens::new();
            t.fedauth_info(&shared.authority.sts_url(), &shared.authority.spn());
            send(wire, t, DEFAULT_PACKET_SIZE, spid).await?;
            let msg = wire.read_message().await?;
            if msg.ty != PacketType::FedAuthToken {
                return Err(unexpected("a FEDAUTH token message (0x08)", &msg));
            }
            delay(shared).await;
            if fault_at(shared, wire, LoginStage::AfterFedAuthToken).await? {
                return Ok(None);
            }
            // MS-TDS: an unparseable 0x08 message gets no answer, only a close.
            let (token, nonce) =
                login7::parse_fedauth_token(&msg.payload).map_err(WireError::from)?;
            if nonce.is_some() && nonce != server_nonce {
                let text = format!("Login failed for user '{TOKEN_PRINCIPAL}'. The nonce in the token message does not match.");
                refuse(
                    shared,
                    wire,
                    spid,
                    &[ServerMessage::new(18456, 1, 14, text)],
                )
                .await?;
                return Ok(None);
            }
            Ok(Some(token))
        }
        FedAuthRequest::Unsupported { .. } => Ok(None),
    }
}

async fn delay(shared: &Shared) {
    let d = shared.faults.login_delay();
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}

fn unexpected(expected: &str, msg: &Message) -> LoginEnd {
    LoginEnd::Broken(WireError::Parse(proto::ParseError::new(
        "TDS message",
        format!("expected {expected}, got a message of type {:?}", msg.ty),
    )))
}

/// The 18456 Azure SQL answers for Entra logins, with the reason for a refused token.
fn login_failed(rejection: Option<&TokenRejection>) -> ServerMessage {
    let base = format!("Login failed for user '{TOKEN_PRINCIPAL}'.");
    let (state, text) = match rejection {
        None => (1, base),
        Some(TokenRejection::Expired { .. }) => (233, format!("{base} Token is expired.")),
        Some(TokenRejection::WrongAudience { .. }) => (
            1,
            format!("{base} The server is not currently configured to accept this token."),
        ),
        Some(other) => {
            let reason = other.to_string();
            let mut c = reason.chars();
            let reason = c
                .next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default();
            (1, format!("{base} {reason}."))
        }
    };
    ServerMessage::new(18456, state, 14, text)
}

/// Sends ERRORs and DONE(ERROR); the caller then closes.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    wire: &mut Wire<S>,
    spid: u16,
    messages: &[ServerMessage],
) -> Result<(), WireError> {
    let mut t = Tokens::new();
    for m in messages {
        t.error(m, &shared.server_name);
    }
    t.done(DONE_ERROR, 0, 0);
    debug!(
        spid,
        number = messages.first().map(|m| m.number),
        "login refused"
    );
    shared
        .stats
        .counters
        .logins_failed
        .fetch_add(1, Ordering::Relaxed);
    send(wire, t, DEFAULT_PACKET_SIZE, spid).await
}

fn random_nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    n[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    n[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    n
}

/// LoggedIn: answer requests until the client leaves or stays idle too long.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Shared,
    wire: &mut Wire<S>,
    s: &mut Session,
) -> Result<(), WireError> {
    let generation = shared.faults.kill_generation();
    loop {
        let read = tokio::time::timeout(shared.idle_timeout, wire.read_message());
        let msg = tokio::select! {
            r = read => match r {
                Ok(m) => m?,
                Err(_) => {
                    debug!(spid = s.spid, "idle timeout");
                    return Ok(());
                }
            },
            () = shared.faults.killed_since(generation) => {
                debug!(spid = s.spid, "fault: session killed");
                s.killed = true;
                shared.stats.counters.killed_sessions.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        };
        let mut t = Tokens::new();
        if msg.status & (STATUS_RESET_CONNECTION | STATUS_RESET_SKIP_TRAN) != 0 {
            t.env_change_bytes(18, &[], &[]);
        }
        match msg.ty {
            PacketType::SqlBatch => {
                shared
                    .stats
                    .counters
                    .batches
                    .fetch_add(1, Ordering::Relaxed);
                let text = proto::skip_all_headers(&msg.payload)
                    .and_then(|b| proto::utf16le(b, "SQL batch text"))?;
                run_batch(shared, s, &text, &mut t);
            }
            PacketType::Attention => t.done(DONE_ATTN, 0, 0),
            PacketType::Rpc => {
                let text = "Remote procedure calls (parameterised statements, sp_executesql, prepared statements) \
                            are not supported by the emulator; send the statement as a plain batch.";
                t.error(&ServerMessage::new(40517, 1, 16, text), &shared.server_name);
                t.done_proc(DONE_ERROR);
            }
            PacketType::TransactionManager => transaction(shared, s, &msg.payload, &mut t)?,
            _ => {
                return Err(
                    unexpected("a SQL batch, RPC, attention or transaction request", &msg)
                        .into_wire(),
                )
            }
        }
        send(wire, t, s.packet_size, s.spid).await?;
    }
}

impl LoginEnd {
    fn into_wire(self) -> WireError {
        match self {
            LoginEnd::Broken(e) => e,
            LoginEnd::Refused => WireError::Closed,
        }
    }
}

/// Transaction-manager requests: BEGIN, COMMIT and ROLLBACK answered with their ENVCHANGEs.
fn transaction(
    shared: &Shared,
    s: &mut Session,
    payload: &[u8],
    t: &mut Tokens,
) -> Result<(), WireError> {
    let body = proto::skip_all_headers(payload)?;
    let mut r = proto::Reader::new(body, "transaction manager request");
    let request = r.u16_le("RequestType")?;
    let begin = |s: &mut Session, t: &mut Tokens| {
        let id = s.next_transaction;
        s.next_transaction += 1;
        s.transaction = Some(id);
        t.env_change_bytes(8, &id.to_le_bytes(), &[]);
    };
    match request {
        // TM_BEGIN_XACT: isolation level, name.
        5 => begin(s, t),
        // TM_COMMIT_XACT / TM_ROLLBACK_XACT: name, then fBeginXact. ODBC 18 in manual-commit mode sets
        // fBeginXact, so the next transaction starts at once (ENVCHANGE 9/10, then 8).
        7 | 8 => {
            let name_len = usize::from(r.u8("transaction name length")?);
            r.take(name_len * 2, "transaction name")?;
            let begin_new = r.remaining() > 0 && r.u8("fBeginXact")? & 1 == 1;
            if let Some(id) = s.transaction.take() {
                t.env_change_bytes(if request == 7 { 9 } else { 10 }, &[], &id.to_le_bytes());
            }
            if begin_new {
                begin(s, t);
            }
        }
        other => {
            let text = format!(
                "Transaction manager request type {other} is not supported by the emulator."
            );
            t.error(&ServerMessage::new(40517, 1, 16, text), &shared.server_name);
            t.done(DONE_ERROR, 0, 0);
            return Ok(());
        }
    }
    t.done(DONE_FINAL, 0, 0);
    Ok(())
}

fn run_batch(shared: &Shared, s: &mut Session, text: &str, t: &mut Tokens) {
    let statements = match batch::parse(text) {
        Ok(v) => v,
        Err(u) => {
            let msg = format!(
                "The statement '{}' is not supported by the emulator. It understands SELECT of SUSER_SNAME(), \
                 USER_NAME(), DB_NAME(), @@VERSION, @@SPID, IS_ROLEMEMBER('role') and integers; CREATE USER … FROM \
                 EXTERNAL PROVIDER; CREATE USER … WITH SID = 0x…, TYPE = E|X; ALTER ROLE … ADD|DROP MEMBER; \
                 GRANT VIEW ANY COLUMN MASTER|ENCRYPTION KEY DEFINITION; DROP USER; SET options.",
                u.statement
            );
            t.error(&ServerMessage::new(40517, 1, 16, msg), &shared.server_name);
            t.done(DONE_ERROR, 0, 0);
            return;
        }
    };
    if statements.is_empty() {
        t.done(DONE_FINAL, 0, 0);
        return;
    }
    let last = statements.len() - 1;
    for (i, st) in statements.into_iter().enumerate() {
        let more = if i == last { 0 } else { DONE_MORE };
        match execute(shared, s, st) {
            Ok(Some(columns)) => {
                t.single_row(&columns);
                t.done(DONE_COUNT | more, CURCMD_SELECT, 1);
            }
            Ok(None) => t.done(DONE_FINAL | more, 0, 0),
            Err(m) => {
                t.error(&m, &shared.server_name);
                t.done(DONE_ERROR | more, 0, 0);
            }
        }
    }
}

fn no_permission() -> ServerMessage {
    ServerMessage::new(
        15247,
        1,
        16,
        "User does not have permission to perform this action.",
    )
}

fn db_error(e: &DbError) -> ServerMessage {
    ServerMessage::new(e.number(), 1, 16, e.to_string())
}

type Row = Vec<(String, Value)>;

fn execute(shared: &Shared, s: &mut Session, st: Statement) -> Result<Option<Row>, ServerMessage> {
    let dbs = &shared.databases;
    let db = s.database.clone();
    let admin = || {
        if dbs.may_administer(&db, &s.who) {
            Ok(())
        } else {
            Err(no_permission())
        }
    };
    match st {
        Statement::Select(cols) => {
            let row = cols
                .into_iter()
                .map(|(e, alias)| {
                    let v = match e {
                        Expr::SuserSname => Value::NVarChar(Some(s.principal.login_name()), 128),
                        Expr::UserName => Value::NVarChar(
                            Some(match &s.who {
                                SessionUser::Dbo => "dbo".to_string(),
                                SessionUser::User(n) => {
                                    dbs.user(&db, n).map_or_else(|| n.clone(), |u| u.name)
                                }
                            }),
                            128,
                        ),
                        Expr::DbName => Value::NVarChar(Some(db.clone()), 128),
                        Expr::Version => Value::NVarChar(Some(version_string()), 300),
                        Expr::Spid => Value::Int(Some(i32::from(s.spid))),
                        Expr::Int(v) => Value::Int(Some(v)),
                        Expr::IsRoleMember(role) => Value::Int(
                            dbs.session_is_role_member(&db, &s.who, &role)
                                .map(i32::from),
                        ),
                    };
                    (alias, v)
                })
                .collect();
            Ok(Some(row))
        }
        Statement::CreateUserFromExternalProvider { name } => {
            admin()?;
            if !shared.authority.graph_available() {
                return Err(ServerMessage::new(
                    33130,
                    1,
                    16,
                    format!(
                        "Principal '{name}' could not be resolved. Error message: 'Microsoft Graph is not reachable \
                         (the emulator's Graph fault knob is on).'"
                    ),
                ));
            }
            let p = shared.authority.resolve_name(&name).ok_or_else(|| {
                ServerMessage::new(
                    33130,
                    1,
                    16,
                    format!("Principal '{name}' could not be found or this principal type is not supported."),
                )
            })?;
            dbs.add_principal_user(&db, &name, &p)
                .map_err(|e| db_error(&e))?;
            Ok(None)
        }
        Statement::CreateUserWithSid {
            name,
            sid,
            user_type,
        } => {
            admin()?;
            if sid.len() != 16 {
                return Err(ServerMessage::new(
                    15419,
                    1,
                    16,
                    format!(
                        "Supplied parameter sid should be binary(16); got {} bytes.",
                        sid.len()
                    ),
                ));
            }
            dbs.add_user(&db, &name, &sid, user_type)
                .map_err(|e| db_error(&e))?;
            Ok(None)
        }
        Statement::AlterRole { role, add, member } => {
            if !dbs.may_administer(&db, &s.who) {
                return Err(db_error(&DbError::NoSuchRole(role)));
            }
            let r = if add {
                dbs.add_role_member(&db, &role, &member)
            } else {
                dbs.drop_role_member(&db, &role, &member)
            };
            r.map_err(|e| match e {
                DbError::NoSuchUser(u) => ServerMessage::new(
                    15151,
                    1,
                    16,
                    format!(
                        "Cannot {} the principal '{u}', because it does not exist or you do not have permission.",
                        if add { "add" } else { "drop" }
                    ),
                ),
                other => db_error(&other),
            })?;
            Ok(None)
        }
        Statement::Grant { grant, to } => {
            admin()?;
            for user in &to {
                if dbs.user(&db, user).is_none() {
                    return Err(db_error(&DbError::NoSuchUser(user.clone())));
                }
            }
            for user in &to {
                dbs.grant(&db, grant, user).map_err(|e| db_error(&e))?;
            }
            Ok(None)
        }
        Statement::DropUser { name, if_exists } => {
            admin()?;
            match dbs.drop_user(&db, &name) {
                Ok(()) => Ok(None),
                Err(DbError::NoSuchUser(_)) if if_exists => Ok(None),
                Err(DbError::NoSuchUser(u)) => Err(ServerMessage::new(
                    15151,
                    1,
                    16,
                    format!("Cannot drop the user '{u}', because it does not exist or you do not have permission."),
                )),
                Err(e) => Err(db_error(&e)),
            }
        }
        Statement::Set => Ok(None),
    }
}

/// What `SELECT @@VERSION` answers: Azure SQL's shape, and plainly an emulator.
pub(crate) fn version_string() -> String {
    format!(
        "Microsoft SQL Server (mssql-entra emulator {}) - emulating Microsoft SQL Azure (RTM) - 12.0.2000.8\n\
         \tA local test double of Azure SQL Database's Entra login; not a database engine.",
        env!("CARGO_PKG_VERSION")
    )
}
