//! LOGIN7 (MS-TDS §2.2.6.4) with its FeatureExt block, and the federated-authentication token message
//! (packet type 0x08, §2.2.6.3).

use std::fmt;

use super::proto::{utf16le, ParseError, Reader};

/// Length of the fixed part of LOGIN7 (TDS 7.2 and later).
const FIXED_LEN: usize = 94;

/// A bearer token received from the client. Its `Debug` never shows the token.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BearerToken(String);

impl BearerToken {
    /// Decodes UTF-16LE token bytes, dropping trailing NUL characters (ODBC appends one in the 0x08 message).
    fn from_utf16(bytes: &[u8], what: &'static str) -> Result<Self, ParseError> {
        let mut s = utf16le(bytes, what)?;
        while s.ends_with('\0') {
            s.pop();
        }
        Ok(Self(s))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BearerToken(<{} characters, redacted>)",
            self.0.chars().count()
        )
    }
}

/// The FEDAUTH feature's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FedAuthRequest {
    /// Library 0x01: the token travels inside LOGIN7 (ODBC's access-token attribute).
    SecurityToken {
        echo: bool,
        token: BearerToken,
        nonce: Option<[u8; 32]>,
    },
    /// Library 0x02: the driver fetches a token itself after FEDAUTHINFO.
    Msal { echo: bool, workflow: u8 },
    /// A library the emulator does not implement (0x00 Live ID, or anything else).
    Unsupported { library: u8 },
}

/// The LOGIN7 fields the emulator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login7 {
    pub(crate) tds_version: u32,
    pub(crate) packet_size: u32,
    pub(crate) integrated_security: bool,
    pub(crate) user_name: String,
    pub(crate) app_name: String,
    pub(crate) server_name: String,
    pub(crate) database: String,
    /// `None` when the client sent no FEDAUTH feature (SQL or integrated auth).
    pub(crate) fedauth: Option<FedAuthRequest>,
    /// Ids of every feature the client asked for, in order (for logs and tests).
    pub(crate) feature_ids: Vec<u8>,
    /// `None` when the client did not ask for connection resiliency (ODBC: `ConnectRetryCount=0`).
    pub(crate) session_recovery: Option<SessionRecovery>,
}

/// The SESSIONRECOVERY feature (id 0x01, MS-TDS §2.2.6.4): connection resiliency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SessionRecovery {
    /// FeatureDataLen 0: a first login that asks the server to allow a later silent reconnect.
    Initial,
    /// A reconnect of a broken session, carrying the state the client wants back.
    Reconnect(RecoveryState),
}

/// The session state a reconnecting client sends. ODBC 18 sends (lab): InitLength DWORD, then the state at
/// login (database B_VARCHAR, collation BYTELEN + 5 bytes, language B_VARCHAR, session states), then
/// CurrentLength DWORD and the changes since (the same fields, empty when nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RecoveryState {
    /// The database at the original login.
    pub(crate) initial_database: String,
    /// The language at the original login.
    pub(crate) initial_language: String,
    /// The database at the time of the break, when it changed since the login.
    pub(crate) current_database: Option<String>,
    /// Session states the client restores, initial then current.
    pub(crate) states: SessionStates,
}

/// (StateId, StateValue) pairs of a SessionStateDataSet.
pub(crate) type SessionStates = Vec<(u8, Vec<u8>)>;

/// Parses LOGIN7. `server_sent_nonce` says whether our PRELOGIN answer carried NONCEOPT, which decides whether a
/// SecurityToken is followed by 32 nonce bytes.
pub(crate) fn parse(payload: &[u8], server_sent_nonce: bool) -> Result<Login7, ParseError> {
    const WHAT: &str = "LOGIN7";
    let mut r = Reader::new(payload, WHAT);
    let fixed = r.take(FIXED_LEN, "the fixed part")?;
    let mut f = Reader::new(fixed, WHAT);
    let length = f.u32_le("Length")? as usize;
    if length > payload.len() {
        return Err(ParseError::new(
            WHAT,
            format!(
                "Length says {length} bytes but the message has {}",
                payload.len()
            ),
        ));
    }
    let payload = &payload[..length.max(FIXED_LEN)];
    let tds_version = f.u32_le("TDSVersion")?;
    let packet_size = f.u32_le("PacketSize")?;
    f.take(12, "ClientProgVer, ClientPID, ConnectionID")?;
    let _flags1 = f.u8("OptionFlags1")?;
    let flags2 = f.u8("OptionFlags2")?;
    let _type_flags = f.u8("TypeFlags")?;
    let flags3 = f.u8("OptionFlags3")?;
    f.take(8, "ClientTimeZone, ClientLCID")?;

    let mut field = |name: &'static str| -> Result<(usize, usize), ParseError> {
        let off = usize::from(f.u16_le(name)?);
        let len = usize::from(f.u16_le(name)?);
        Ok((off, len))
    };
    let host = field("HostName")?;
    let user = field("UserName")?;
    let _password = field("Password")?;
    let app = field("AppName")?;
    let server = field("ServerName")?;
    let extension = field("Extension")?;
    let _clt_int = field("CltIntName")?;
    let _language = field("Language")?;
    let database = field("Database")?;
    let _ = host;

    let text = |name: &'static str, (off, cch): (usize, usize)| -> Result<String, ParseError> {
        if cch == 0 {
            return Ok(String::new());
        }
        let end = off
            .checked_add(cch * 2)
            .filter(|&e| e <= payload.len())
            .ok_or_else(|| {
                ParseError::new(
                    WHAT,
                    format!("{name} (offset {off}, {cch} chars) points past the end"),
                )
            })?;
        utf16le(&payload[off..end], WHAT)
    };
    let user_name = text("UserName", user)?;
    let app_name = text("AppName", app)?;
    let server_name = text("ServerName", server)?;
    let database = text("Database", database)?;

    let mut fedauth = None;
    let mut session_recovery = None;
    let mut feature_ids = Vec::new();
    if flags3 & 0x10 != 0 && extension.1 != 0 {
        let (ib, cb) = extension;
        if cb < 4 {
            return Err(ParseError::new(
                WHAT,
                format!("cbExtension is {cb}, expected 4"),
            ));
        }
        let dword = payload.get(ib..ib + 4).ok_or_else(|| {
            ParseError::new(WHAT, format!("ibExtension {ib} points past the end"))
        })?;
        let block_off = u32::from_le_bytes([dword[0], dword[1], dword[2], dword[3]]) as usize;
        let block = payload.get(block_off..).ok_or_else(|| {
            ParseError::new(
                WHAT,
                format!("the FeatureExt offset {block_off} points past the end"),
            )
        })?;
        let mut fr = Reader::new(block, "LOGIN7 FeatureExt");
        loop {
            let id = fr.u8("FeatureId")?;
            if id == 0xFF {
                break;
            }
            let len = fr.u32_le("FeatureDataLen")? as usize;
            let data = fr.take(len, "FeatureData")?;
            feature_ids.push(id);
            match id {
                0x01 if data.is_empty() => session_recovery = Some(SessionRecovery::Initial),
                0x01 => session_recovery = Some(SessionRecovery::Reconnect(parse_recovery(data)?)),
                0x02 => fedauth = Some(parse_fedauth(data, server_sent_nonce)?),
                _ => {}
            }
        }
    }

    Ok(Login7 {
        tds_version,
        packet_size,
        integrated_security: flags2 & 0x80 != 0,
        user_name,
        app_name,
        server_name,
        database,
        fedauth,
        feature_ids,
        session_recovery,
    })
}

fn parse_fedauth(data: &[u8], server_sent_nonce: bool) -> Result<FedAuthRequest, ParseError> {
    const WHAT: &str = "LOGIN7 FEDAUTH feature";
    let mut r = Reader::new(data, WHAT);
    let options = r.u8("options byte")?;
    let library = options >> 1;
    let echo = options & 1 == 1;
    match library {
        0x01 => {
            let len = r.u32_le("token length")? as usize;
            let bytes = r.take(len, "token")?;
            let token = BearerToken::from_utf16(bytes, WHAT)?;
            let nonce = if server_sent_nonce {
                let n = r.take(32, "nonce (the server sent NONCEOPT)")?;
                let mut a = [0u8; 32];
                a.copy_from_slice(n);
                Some(a)
            } else {
                None
            };
            if r.remaining() != 0 {
                return Err(ParseError::new(
                    WHAT,
                    format!("{} unexpected bytes after the token", r.remaining()),
                ));
            }
            Ok(FedAuthRequest::SecurityToken { echo, token, nonce })
        }
        0x02 => {
            if data.len() != 2 {
                return Err(ParseError::new(
                    WHAT,
                    format!("FeatureDataLen is {}, expected 2 for MSAL", data.len()),
                ));
            }
            Ok(FedAuthRequest::Msal {
                echo,
                workflow: data[1],
            })
        }
        other => Ok(FedAuthRequest::Unsupported { library: other }),
    }
}

fn parse_recovery(data: &[u8]) -> Result<RecoveryState, ParseError> {
    const WHAT: &str = "LOGIN7 SESSIONRECOVERY feature";
    let mut r = Reader::new(data, WHAT);
    let init_len = r.u32_le("InitSessionRecoveryData length")? as usize;
    let init = r.take(init_len, "InitSessionRecoveryData")?;
    let (initial_database, initial_language, mut states) = recovery_block(init)?;
    let current_len = r.u32_le("SessionRecoveryDataToSend length")? as usize;
    let current = r.take(current_len, "SessionRecoveryDataToSend")?;
    let (current_database, _, current_states) = recovery_block(current)?;
    if r.remaining() != 0 {
        return Err(ParseError::new(
            WHAT,
            format!("{} unexpected bytes after the session state", r.remaining()),
        ));
    }
    states.extend(current_states);
    Ok(RecoveryState {
        initial_database,
        initial_language,
        current_database: Some(current_database).filter(|d| !d.is_empty()),
        states,
    })
}

/// Database, collation (skipped), language and session states of one half of the recovery data.
fn recovery_block(block: &[u8]) -> Result<(String, String, SessionStates), ParseError> {
    const WHAT: &str = "LOGIN7 SESSIONRECOVERY state";
    let mut r = Reader::new(block, WHAT);
    fn b_varchar(r: &mut Reader<'_>, field: &'static str) -> Result<String, ParseError> {
        let cch = usize::from(r.u8(field)?);
        utf16le(r.take(cch * 2, field)?, WHAT)
    }
    let database = b_varchar(&mut r, "RecoveryDatabase")?;
    let collation_len = usize::from(r.u8("RecoveryCollation length")?);
    r.take(collation_len, "RecoveryCollation")?;
    let language = b_varchar(&mut r, "RecoveryLanguage")?;
    let mut states = Vec::new();
    while r.remaining() > 0 {
        let id = r.u8("StateId")?;
        let len = match r.u8("StateLen")? {
            0xFF => r.u32_le("StateLen (long form)")? as usize,
            n => usize::from(n),
        };
        states.push((id, r.take(len, "StateValue")?.to_vec()));
    }
    Ok((database, language, states))
}

/// Parses the 0x08 message: DataLen, TokenLen, the UTF-16LE token (trailing NULs dropped) and an optional nonce.
pub(crate) fn parse_fedauth_token(
    payload: &[u8],
) -> Result<(BearerToken, Option<[u8; 32]>), ParseError> {
    const WHAT: &str = "FEDAUTH token message";
    let mut r = Reader::new(payload, WHAT);
    let data_len = r.u32_le("DataLen")? as usize;
    if data_len != r.remaining() {
        return Err(ParseError::new(
            WHAT,
            format!("DataLen is {data_len} but {} bytes follow", r.remaining()),
        ));
    }
    let token_len = r.u32_le("FedAuthTokenLen")? as usize;
    let bytes = r.take(token_len, "FedAuthToken")?;
    let token = BearerToken::from_utf16(bytes, WHAT)?;
    let nonce = match r.remaining() {
        0 => None,
        32 => {
            let mut a = [0u8; 32];
            a.copy_from_slice(r.rest());
            Some(a)
        }
        n => {
            return Err(ParseError::new(
                WHAT,
                format!("{n} bytes after the token; expected 0 or a 32-byte nonce"),
            ))
        }
    };
    Ok((token, nonce))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sql::proto::utf16le_bytes;

    /// Builds a LOGIN7 like ODBC 18 does: a few text fields and a FeatureExt block at the end.
    pub(crate) fn build_login7(database: &str, features: &[(u8, Vec<u8>)]) -> Vec<u8> {
        let fields = ["host", "", "", "app", "tcp:127.0.0.1,1433"];
        let mut var = Vec::new();
        let mut table = Vec::new();
        let mut off = FIXED_LEN;
        let push = |table: &mut Vec<u8>, var: &mut Vec<u8>, text: &str, off: &mut usize| {
            let b = utf16le_bytes(text);
            table.extend_from_slice(&(*off as u16).to_le_bytes());
            table.extend_from_slice(&((b.len() / 2) as u16).to_le_bytes());
            *off += b.len();
            var.extend_from_slice(&b);
        };
        for t in fields {
            push(&mut table, &mut var, t, &mut off);
        }
        // Extension: the DWORD goes here, its value patched below.
        let ext_dword_at = off;
        table.extend_from_slice(&(off as u16).to_le_bytes());
        table.extend_from_slice(&4u16.to_le_bytes());
        var.extend_from_slice(&[0; 4]);
        off += 4;
        for t in ["ODBC", "", database] {
            push(&mut table, &mut var, t, &mut off);
        }
        let mut fixed = Vec::new();
        fixed.extend_from_slice(&0u32.to_le_bytes()); // length, patched
        fixed.extend_from_slice(&0x7400_0004u32.to_le_bytes());
        fixed.extend_from_slice(&0u32.to_le_bytes());
        fixed.extend_from_slice(&[0; 12]);
        fixed.extend_from_slice(&[0xE0, 0x03, 0x00, 0x10]);
        fixed.extend_from_slice(&[0; 8]);
        fixed.extend_from_slice(&table);
        fixed.extend_from_slice(&[0xFF; 6]);
        fixed.extend_from_slice(&[0; 16]);
        assert_eq!(fixed.len(), FIXED_LEN);
        let mut msg = fixed;
        msg.extend_from_slice(&var);
        let block_at = msg.len() as u32;
        msg[ext_dword_at..ext_dword_at + 4].copy_from_slice(&block_at.to_le_bytes());
        for (id, data) in features {
            msg.push(*id);
            msg.extend_from_slice(&(data.len() as u32).to_le_bytes());
            msg.extend_from_slice(data);
        }
        msg.push(0xFF);
        let len = msg.len() as u32;
        msg[..4].copy_from_slice(&len.to_le_bytes());
        msg
    }

    pub(crate) fn security_token_feature(token: &str, echo: bool) -> (u8, Vec<u8>) {
        let t = utf16le_bytes(token);
        let mut d = vec![0x02 | u8::from(echo)];
        d.extend_from_slice(&(t.len() as u32).to_le_bytes());
        d.extend_from_slice(&t);
        (0x02, d)
    }

    #[test]
    fn parses_security_token_login() {
        let msg = build_login7(
            "appdb",
            &[
                (0x10, vec![1, 2]),
                (0x01, vec![]),
                security_token_feature("eyJ.a.b", true),
            ],
        );
        let l = parse(&msg, false).unwrap();
        assert_eq!(l.database, "appdb");
        assert_eq!(l.server_name, "tcp:127.0.0.1,1433");
        assert_eq!(l.feature_ids, vec![0x10, 0x01, 0x02]);
        match l.fedauth {
            Some(FedAuthRequest::SecurityToken {
                echo: true,
                token,
                nonce: None,
            }) => {
                assert_eq!(token.expose(), "eyJ.a.b")
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn parses_msal_login() {
        let msg = build_login7("", &[(0x02, vec![0x05, 0x01])]);
        let l = parse(&msg, false).unwrap();
        assert_eq!(
            l.fedauth,
            Some(FedAuthRequest::Msal {
                echo: true,
                workflow: 1
            })
        );
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let msg = build_login7("", &[security_token_feature("SECRET-TOKEN-VALUE", false)]);
        let l = parse(&msg, false).unwrap();
        let dbg = format!("{l:?}");
        assert!(!dbg.contains("SECRET-TOKEN-VALUE"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn fedauth_token_message_strips_the_nul() {
        // DataLen=54, TokenLen=50: 24 characters plus U+0000, as ODBC 18 sends it.
        let mut tok = utf16le_bytes("FAKE-IMDS-TOKEN.xxxxxxxx");
        tok.extend_from_slice(&[0, 0]);
        let mut msg = Vec::new();
        msg.extend_from_slice(&((tok.len() + 4) as u32).to_le_bytes());
        msg.extend_from_slice(&(tok.len() as u32).to_le_bytes());
        msg.extend_from_slice(&tok);
        let (t, nonce) = parse_fedauth_token(&msg).unwrap();
        assert_eq!(t.expose(), "FAKE-IMDS-TOKEN.xxxxxxxx");
        assert_eq!(nonce, None);
    }

    /// The SESSIONRECOVERY data ODBC 18.6 sent on a reconnect (lab): `appdb`, Latin1_General CI_AS,
    /// `us_english`, no session states, and nothing changed since the login.
    const ODBC_RECOVERY_DATA: &[u8] = &[
        0x26, 0, 0, 0, 0x05, b'a', 0, b'p', 0, b'p', 0, b'd', 0, b'b', 0, 0x05, 0x09, 0x04, 0xD0,
        0x00, 0x34, 0x0A, b'u', 0, b's', 0, b'_', 0, b'e', 0, b'n', 0, b'g', 0, b'l', 0, b'i', 0,
        b's', 0, b'h', 0, 0x03, 0, 0, 0, 0, 0, 0,
    ];

    #[test]
    fn parses_session_recovery_requests() {
        let (id, fedauth) = security_token_feature("eyJ0eXAi.x.y", true);
        let initial = parse(
            &build_login7("appdb", &[(0x01, Vec::new()), (id, fedauth.clone())]),
            false,
        )
        .expect("initial");
        assert_eq!(initial.session_recovery, Some(SessionRecovery::Initial));
        let reconnect = parse(
            &build_login7(
                "appdb",
                &[(0x01, ODBC_RECOVERY_DATA.to_vec()), (id, fedauth.clone())],
            ),
            false,
        )
        .expect("reconnect");
        let Some(SessionRecovery::Reconnect(state)) = reconnect.session_recovery else {
            panic!("a reconnect: {:?}", reconnect.session_recovery);
        };
        assert_eq!(state.initial_database, "appdb");
        assert_eq!(state.initial_language, "us_english");
        assert_eq!(state.current_database, None);
        assert!(state.states.is_empty());
        let without =
            parse(&build_login7("appdb", &[(id, fedauth.clone())]), false).expect("plain");
        assert_eq!(without.session_recovery, None);
        // A state that runs past its block is refused, not read out of bounds.
        let mut bad = ODBC_RECOVERY_DATA.to_vec();
        bad[0] = 0x40;
        assert!(parse(&build_login7("appdb", &[(0x01, bad), (id, fedauth)]), false).is_err());
    }

    #[test]
    fn truncated_login_is_an_error() {
        let msg = build_login7("db", &[security_token_feature("abc", false)]);
        for cut in [0, 10, 93, msg.len() - 1] {
            assert!(parse(&msg[..cut], false).is_err(), "cut at {cut}");
        }
    }
}
