//! The commands that use settings: `connstr`, `token`, `check` and `grant --apply`.
//!
//! Everything goes through the facade's [`Plan`], so the command builds exactly the connection string,
//! token source and connector an application built on `mssql-entra` would.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mssql_entra::lower::odbc::{Connector, DiagnosisKind, EntraConnection};
use mssql_entra::lower::token::{
    AccessToken, BlockingTokenSource, PrincipalKind, SqlSid, TokenSource, UnverifiedClaims,
};
use mssql_entra::{AuthMode, Plan};
use odbc_api::{Cursor, ResultSetMetadata};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::exit::{chain, Class, DiagnosisOut, Failure, Record};
use crate::output::Out;
use crate::tsql::{self, GrantPlan, Name, PrincipalType};

/// How the plan authenticates, in words.
pub(crate) fn describe_mode(mode: AuthMode) -> String {
    match mode {
        AuthMode::AccessToken => {
            "access token from the settings (TOKEN / TOKEN_ENV), passed to the driver as attribute 1256; it cannot be renewed".to_owned()
        }
        AuthMode::TokenSource(kind) => format!(
            "token mode: `{kind}` token source, cached and renewed ahead of expiry, passed to the driver as attribute 1256"
        ),
        AuthMode::Driver(m) => format!("the driver's own Authentication={m}; the driver fetches the token itself"),
        AuthMode::ConnectionString => {
            "the connection string as given (SQL login or DSN), no Entra ID".to_owned()
        }
        other => format!("{other:?}"),
    }
}

fn mode_key(mode: AuthMode) -> String {
    match mode {
        AuthMode::AccessToken => "access-token".to_owned(),
        AuthMode::TokenSource(kind) => format!("token-source:{kind}"),
        AuthMode::Driver(m) => format!("driver:{m}"),
        AuthMode::ConnectionString => "connection-string".to_owned(),
        other => format!("{other:?}"),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

// ---------------------------------------------------------------------------------------------
// connstr

#[derive(Debug, Serialize)]
struct ConnstrOut {
    connection_string: String,
    mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// `connstr`: the connection string the driver will get, secrets masked.
pub(crate) fn connstr(plan: &Plan, json: bool, out: &mut Out) -> Result<(), Failure> {
    // The connection string's Display masks PWD and every other secret.
    let cs = plan.connection_string().to_string();
    if json {
        return out.json(&ConnstrOut {
            connection_string: cs,
            mode: mode_key(plan.mode()),
            scope: plan.scope().map(|s| s.as_str().to_owned()),
        });
    }
    out.line(&cs)?;
    eprintln!("mode: {}", describe_mode(plan.mode()));
    if let Some(scope) = plan.scope() {
        eprintln!("token scope: {}", scope.as_str());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// token

/// The claims of a token, for output. Times are RFC 3339.
#[derive(Debug, Serialize)]
pub(crate) struct ClaimsOut {
    aud: Vec<String>,
    iss: Option<String>,
    tid: Option<String>,
    oid: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    idtyp: Option<String>,
    upn: Option<String>,
    username: Option<String>,
    scp: Option<String>,
    exp: Option<String>,
    nbf: Option<String>,
    iat: Option<String>,
}

impl From<&UnverifiedClaims> for ClaimsOut {
    fn from(c: &UnverifiedClaims) -> Self {
        Self {
            aud: c.aud.clone(),
            iss: c.iss.clone(),
            tid: c.tid.clone(),
            oid: c.oid.clone(),
            appid: c.appid.clone(),
            azp: c.azp.clone(),
            idtyp: c.idtyp.clone(),
            upn: c.upn.clone(),
            username: c.username.clone(),
            scp: c.scp.clone(),
            exp: c.exp.map(rfc3339),
            nbf: c.nbf.map(rfc3339),
            iat: c.iat.map(rfc3339),
        }
    }
}

/// What a token says about its principal and how Azure SQL maps it.
#[derive(Debug, Serialize)]
pub(crate) struct TokenReport {
    /// Where the token came from: `settings` (a literal TOKEN/TOKEN_ENV) or the source's name.
    source: String,
    fetch_ms: u64,
    expires_on: String,
    expires_in_secs: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<&'static str>,
    /// The SID Azure SQL maps the token to.
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_sid: Option<String>,
    /// Which claim the SID comes from (`appid/azp` or `oid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_sid_from: Option<&'static str>,
    /// For applications: the SID of the object id, which a wrongly created user would have.
    #[serde(skip_serializing_if = "Option::is_none")]
    object_id_sid: Option<String>,
    /// The statement that creates the matching database user.
    #[serde(skip_serializing_if = "Option::is_none")]
    create_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims: Option<ClaimsOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    claims_error: Option<String>,
    /// The raw token: only with `--show-token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl TokenReport {
    fn new(token: &AccessToken, source: String, fetch: Duration, show_token: bool) -> Self {
        let now = OffsetDateTime::now_utc();
        let mut report = Self {
            source,
            fetch_ms: ms(fetch),
            expires_on: rfc3339(token.expires_on),
            expires_in_secs: (token.expires_on - now).whole_seconds(),
            principal: None,
            sql_sid: None,
            sql_sid_from: None,
            object_id_sid: None,
            create_user: None,
            claims: None,
            claims_error: None,
            token: show_token.then(|| token.token.expose_secret().to_owned()),
        };
        match UnverifiedClaims::from_jwt(token.token.expose_secret()) {
            Ok(claims) => {
                report.fill(&claims);
                report.claims = Some(ClaimsOut::from(&claims));
            }
            Err(e) => {
                report.claims_error = Some(format!(
                "the token is not a JWT whose claims can be read ({e}); Azure SQL tokens are JWTs"
            ))
            }
        }
        report
    }

    fn fill(&mut self, claims: &UnverifiedClaims) {
        let kind = claims.principal_kind();
        self.principal = kind.map(|k| match k {
            PrincipalKind::Application => "application",
            PrincipalKind::User => "user",
        });
        let Ok(sid) = claims.sql_sid() else {
            return;
        };
        self.sql_sid = Some(sid.to_string());
        let name = match kind {
            Some(PrincipalKind::Application) => {
                self.sql_sid_from = Some("appid/azp");
                self.object_id_sid = claims
                    .oid
                    .as_deref()
                    .and_then(|o| SqlSid::from_guid_str(o).ok())
                    .map(|s| s.to_string());
                claims.application_id().map(str::to_owned)
            }
            Some(PrincipalKind::User) => {
                self.sql_sid_from = Some("oid");
                claims
                    .upn
                    .clone()
                    .or_else(|| claims.username.clone())
                    .or_else(|| claims.oid.clone())
            }
            None => None,
        };
        if let Some(name) = name.and_then(|n| Name::parse(&n).ok()) {
            self.create_user = Some(tsql::create_user_with_sid(
                &name,
                sid,
                PrincipalType::External,
            ));
        }
    }

    /// Human-readable lines.
    fn render(&self, all_claims: bool) -> String {
        let mut t = String::new();
        let mut line = |k: &str, v: &str| t.push_str(&format!("{k:<14} {v}\n"));
        let mins = self.expires_in_secs / 60;
        line(
            "token:",
            &format!(
                "from {} in {} ms; expires {} ({})",
                self.source,
                self.fetch_ms,
                self.expires_on,
                if self.expires_in_secs <= 0 {
                    "ALREADY EXPIRED".to_owned()
                } else {
                    format!("in {mins} min")
                }
            ),
        );
        if let Some(e) = &self.claims_error {
            line("claims:", e);
        }
        if let Some(c) = &self.claims {
            line("audience:", &c.aud.join(", "));
            if let Some(tid) = &c.tid {
                line("tenant:", tid);
            }
            let who = match self.principal {
                Some("application") => format!(
                    "application or managed identity (appid {}, object id {})",
                    c.appid.as_deref().or(c.azp.as_deref()).unwrap_or("?"),
                    c.oid.as_deref().unwrap_or("?")
                ),
                Some(_) => format!(
                    "user {} (object id {})",
                    c.upn.as_deref().or(c.username.as_deref()).unwrap_or("?"),
                    c.oid.as_deref().unwrap_or("?")
                ),
                None => "unknown (no idtyp, appid, azp, upn or scp claim)".to_owned(),
            };
            line("principal:", &who);
            if let Some(idtyp) = &c.idtyp {
                line("idtyp:", idtyp);
            }
        }
        if let (Some(sid), Some(from)) = (&self.sql_sid, self.sql_sid_from) {
            let why = if from == "oid" {
                "from the object id: Azure SQL maps users by object id"
            } else {
                "from the application id: Azure SQL maps applications and managed identities by application id, not object id"
            };
            line("SQL SID:", &format!("{sid} ({why})"));
            if let Some(wrong) = &self.object_id_sid {
                line(
                    "not:",
                    &format!("{wrong} (the object id's SID: a user created from it cannot log in)"),
                );
            }
        }
        if let Some(stmt) = &self.create_user {
            line("user by SID:", stmt);
        }
        if all_claims {
            if let Some(c) = &self.claims {
                t.push_str("claims (decoded, signature not verified):\n");
                let pairs: [(&str, Option<String>); 13] = [
                    ("aud", Some(c.aud.join(", "))),
                    ("iss", c.iss.clone()),
                    ("tid", c.tid.clone()),
                    ("oid", c.oid.clone()),
                    ("appid", c.appid.clone()),
                    ("azp", c.azp.clone()),
                    ("idtyp", c.idtyp.clone()),
                    ("upn", c.upn.clone()),
                    ("username", c.username.clone()),
                    ("scp", c.scp.clone()),
                    ("exp", c.exp.clone()),
                    ("nbf", c.nbf.clone()),
                    ("iat", c.iat.clone()),
                ];
                for (k, v) in pairs {
                    if let Some(v) = v.filter(|v| !v.is_empty()) {
                        t.push_str(&format!("  {k:<9} {v}\n"));
                    }
                }
            }
        }
        t
    }
}

/// Acquires a token through the plan's (cached) source.
fn acquire(plan: &Plan, show_token: bool) -> Result<Option<TokenReport>, Failure> {
    let (Some(source), Some(scope)) = (plan.token_source(), plan.scope()) else {
        return Ok(None);
    };
    let blocking = BlockingTokenSource::new(Arc::clone(source) as Arc<dyn TokenSource>)
        .map_err(|e| Failure::new(Class::Token, chain(&e)))?;
    let start = Instant::now();
    let token = blocking.get_token(&[scope.as_str()], None).map_err(|e| {
        Failure::new(
            Class::Token,
            format!(
                "could not get an access token for {}: {}",
                scope.as_str(),
                chain(&e)
            ),
        )
    })?;
    let from = match plan.mode() {
        AuthMode::TokenSource(kind) => format!("the `{kind}` source"),
        _ => "the settings (TOKEN / TOKEN_ENV)".to_owned(),
    };
    Ok(Some(TokenReport::new(
        &token,
        from,
        start.elapsed(),
        show_token,
    )))
}

/// `token`: acquire a token through the configured source and show what it says.
pub(crate) fn token(
    plan: &Plan,
    claims: bool,
    show_token: bool,
    json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let Some(report) = acquire(plan, show_token)? else {
        return Err(Failure::new(
            Class::Settings,
            format!(
                "these settings do not use token mode ({}), so there is no token to show; configure TOKEN = {{ source = \"...\" }} (or TOKEN_ENV) to use a token source",
                describe_mode(plan.mode())
            ),
        ));
    };
    if json {
        return out.json(&report);
    }
    out.text(&report.render(claims))?;
    if let Some(token) = &report.token {
        out.line(token)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// check

#[derive(Debug, Serialize)]
struct LoginOut {
    driver_version: Option<String>,
    login_name: Option<String>,
    user_name: Option<String>,
    database: Option<String>,
    roles: Vec<RoleOut>,
}

#[derive(Debug, Serialize)]
struct RoleOut {
    role: &'static str,
    /// `true`/`false`, or `null` when the server could not say (`IS_ROLEMEMBER` gave NULL).
    member: Option<bool>,
}

#[derive(Debug, Default, Serialize)]
struct Timings {
    settings_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queries_ms: Option<u64>,
    total_ms: u64,
}

#[derive(Debug, Serialize)]
struct CheckOut {
    ok: bool,
    mode: String,
    connection_string: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    login: Option<LoginOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<Failure>,
    timings: Timings,
}

const ROLES: [&str; 4] = ["db_owner", "db_datareader", "db_datawriter", "db_ddladmin"];

/// `check`: everything between the settings and a working login, timed and explained.
pub(crate) fn check(
    plan: &Plan,
    started: Instant,
    settings_time: Duration,
    json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let mut report = CheckOut {
        ok: false,
        mode: mode_key(plan.mode()),
        connection_string: plan.connection_string().to_string(),
        token: None,
        login: None,
        failure: None,
        timings: Timings {
            settings_ms: ms(settings_time),
            ..Timings::default()
        },
    };
    if !json {
        out.line(&format!("{:<14} {}", "mode:", describe_mode(plan.mode())))?;
        out.line(&format!(
            "{:<14} {}",
            "connection:", report.connection_string
        ))?;
    }
    let result = check_steps(plan, &mut report, json, out);
    report.timings.total_ms = ms(started.elapsed());
    if let Err(f) = &result {
        report.failure = Some(f.clone());
    } else {
        report.ok = true;
    }
    if json {
        out.json(&report)?;
    } else {
        let t = &report.timings;
        let mut parts = vec![format!("settings {} ms", t.settings_ms)];
        if let Some(v) = t.token_ms {
            parts.push(format!("token {v} ms"));
        }
        if let Some(v) = t.login_ms {
            parts.push(format!("login {v} ms"));
        }
        if let Some(v) = t.queries_ms {
            parts.push(format!("queries {v} ms"));
        }
        parts.push(format!("total {} ms", t.total_ms));
        out.line(&format!("{:<14} {}", "timings:", parts.join(", ")))?;
        match &result {
            Ok(()) => out.line(&format!("{:<14} OK", "result:"))?,
            Err(f) => out.line(&format!(
                "{:<14} FAILED (exit {}; the diagnosis is on stderr)",
                "result:",
                f.code()
            ))?,
        }
    }
    result
}

fn check_steps(
    plan: &Plan,
    report: &mut CheckOut,
    json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    if plan.token_source().is_some() {
        let token = acquire(plan, false)?;
        if let Some(token) = token {
            report.timings.token_ms = Some(token.fetch_ms);
            if !json {
                out.text(&token.render(false))?;
            }
            report.token = Some(token);
        }
    }
    let connector = plan.connector().map_err(|e| Failure::from_facade(&e))?;
    if !json {
        if let Some(v) = connector.driver_version() {
            out.line(&format!("{:<14} {v}", "driver:"))?;
        }
    }
    let start = Instant::now();
    let connected = connector.connect();
    // Timed on failure too: a login that fails after the whole login timeout says something.
    let login_time = start.elapsed();
    report.timings.login_ms = Some(ms(login_time));
    let conn = connected.map_err(|e| explain_connect_failure(&connector, &e))?;
    if !json {
        let attempts = conn.attempts();
        out.line(&format!(
            "{:<14} ok in {} ms{}",
            "login:",
            ms(login_time),
            if attempts > 1 {
                format!(" ({attempts} attempts)")
            } else {
                String::new()
            }
        ))?;
    }
    let start = Instant::now();
    let mut login = who_am_i(&conn)?;
    login.driver_version = connector.driver_version().map(|v| v.to_string());
    report.timings.queries_ms = Some(ms(start.elapsed()));
    if !json {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".to_owned());
        out.line(&format!(
            "{:<14} {}",
            "login name:",
            show(&login.login_name)
        ))?;
        out.line(&format!(
            "{:<14} {}",
            "database user:",
            show(&login.user_name)
        ))?;
        out.line(&format!("{:<14} {}", "database:", show(&login.database)))?;
        let roles: Vec<String> = login
            .roles
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r.role,
                    match r.member {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "unknown",
                    }
                )
            })
            .collect();
        out.line(&format!("{:<14} {}", "roles:", roles.join(", ")))?;
    }
    report.login = Some(login);
    Ok(())
}

/// The failure of a connect, with every diagnostic record: odbc-api keeps only the first record of
/// a failed connect, so one more login on the connector's own handle collects all of them.
fn explain_connect_failure(
    connector: &Connector,
    error: &mssql_entra::lower::odbc::Error,
) -> Failure {
    let first = Failure::from_odbc(error);
    // A specific diagnosis needs no second login (which the server would log as one more failure).
    let generic = match error.diagnosis() {
        None => true,
        Some(d) => d.kind == DiagnosisKind::LoginTimeout,
    };
    if first.class != Class::Connect || error.odbc().is_none() || !generic {
        return first;
    }
    match connector.check() {
        Err(detailed) if detailed.odbc().is_some() => {
            let mut f = Failure::from_odbc(&detailed);
            if f.diagnosis.is_none() {
                f.diagnosis = first.diagnosis;
            }
            f
        }
        _ => first,
    }
}

/// `SUSER_SNAME()`, `USER_NAME()`, `DB_NAME()` and `IS_ROLEMEMBER` for the standard roles.
fn who_am_i(conn: &EntraConnection) -> Result<LoginOut, Failure> {
    let roles = ROLES
        .iter()
        .map(|r| format!(", IS_ROLEMEMBER('{r}')"))
        .collect::<String>();
    let sql = format!("SELECT SUSER_SNAME(), USER_NAME(), DB_NAME(){roles}");
    let values = first_row(conn, &sql)?;
    let mut it = values.into_iter();
    let mut next = || it.next().flatten();
    let login_name = next();
    let user_name = next();
    let database = next();
    let roles = ROLES
        .iter()
        .map(|role| RoleOut {
            role,
            member: next().map(|v| v.trim() == "1"),
        })
        .collect();
    Ok(LoginOut {
        driver_version: None,
        login_name,
        user_name,
        database,
        roles,
    })
}

fn query_failure(sql: &str, e: &odbc_api::Error) -> Failure {
    let mut f = Failure::new(Class::Query, format!("`{sql}` failed"));
    match e {
        odbc_api::Error::Diagnostics { record, .. } => {
            let record = mssql_entra::lower::odbc::DiagRecord::new(
                record.state.as_str().to_owned(),
                record.native_error,
                &odbc_api::handles::slice_to_cow_utf8(&record.message),
            );
            f.records.push(Record::from(&record));
        }
        other => f.message.push_str(&format!(": {other}")),
    }
    f
}

/// The first row of `sql`, every column as text (`None` for NULL).
fn first_row(conn: &EntraConnection, sql: &str) -> Result<Vec<Option<String>>, Failure> {
    let fail = |e: odbc_api::Error| query_failure(sql, &e);
    let Some(mut cursor) = conn.connection().execute(sql, (), None).map_err(fail)? else {
        return Err(Failure::new(
            Class::Query,
            format!("`{sql}` returned no result set"),
        ));
    };
    let columns = cursor.num_result_cols().map_err(fail)?;
    let Some(mut row) = cursor.next_row().map_err(fail)? else {
        return Err(Failure::new(
            Class::Query,
            format!("`{sql}` returned no row"),
        ));
    };
    let mut values = Vec::new();
    for col in 1..=u16::try_from(columns).unwrap_or(0) {
        let mut buf = Vec::new();
        let not_null = row.get_text(col, &mut buf).map_err(fail)?;
        values.push(not_null.then(|| String::from_utf8_lossy(&buf).into_owned()));
    }
    Ok(values)
}

// ---------------------------------------------------------------------------------------------
// grant --apply

/// Error 33130 from `CREATE USER … FROM EXTERNAL PROVIDER`: the server could not look the name up.
fn principal_not_found(grant: &GrantPlan) -> DiagnosisOut {
    DiagnosisOut {
        kind: format!("{:?}", DiagnosisKind::PrincipalNotFound),
        summary: format!(
            "The server could not find {} in Microsoft Entra ID (33130): the name is not the exact display name or UPN, it is ambiguous, or the server cannot reach Microsoft Graph.",
            grant.name
        ),
        fix: format!(
            "Check the name, or create the user from its SID, which needs no lookup: add --app-id <application (client) id> (`mssql-entra grant --name {} --app-id <guid> --apply`); for users and groups, `mssql-entra sid <object id> --name …` prints the statement.",
            grant.name.as_str()
        ),
        see: format!("docs/{}", DiagnosisKind::PrincipalNotFound.anchor()),
    }
}

#[derive(Debug, Serialize)]
struct ApplyOut {
    applied: Vec<String>,
}

/// `grant --apply`: runs the script's statements in order through a connection made from the
/// settings, stopping at the first failure.
pub(crate) fn apply(
    plan: &Plan,
    grant: &GrantPlan,
    json: bool,
    out: &mut Out,
) -> Result<(), Failure> {
    let connector = plan.connector().map_err(|e| Failure::from_facade(&e))?;
    let conn = connector
        .connect()
        .map_err(|e| explain_connect_failure(&connector, &e))?;
    let steps = grant.steps();
    let total = steps.len();
    let mut applied = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if let Err(e) = conn.connection().execute(&step.sql, (), None) {
            let mut f = query_failure(&step.sql, &e);
            if f.records.iter().any(|r| r.native_error == 33130) {
                f.diagnosis = Some(Box::new(principal_not_found(grant)));
            }
            f.message = format!(
                "statement {} of {total} failed: {}{}",
                i + 1,
                step.sql,
                if applied.is_empty() {
                    String::new()
                } else {
                    format!(
                        "\n  the {} statement(s) before it were applied (the script is not one transaction); fix the cause and run the rest",
                        applied.len()
                    )
                }
            );
            return Err(f);
        }
        if !json {
            out.line(&format!("ok  {}", step.sql))?;
        }
        applied.push(step.sql.clone());
    }
    if json {
        out.json(&ApplyOut { applied })?;
    }
    Ok(())
}
