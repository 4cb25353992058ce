//! PRELOGIN (MS-TDS §2.2.6.5): parsing the client's option table and building the server's answer.

use super::proto::{ParseError, Reader};

/// The ENCRYPTION option values.
pub(crate) const ENCRYPT_OFF: u8 = 0x00;
pub(crate) const ENCRYPT_ON: u8 = 0x01;
pub(crate) const ENCRYPT_NOT_SUP: u8 = 0x02;
pub(crate) const ENCRYPT_REQ: u8 = 0x03;

/// What the client's PRELOGIN said, as far as the emulator cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ClientPrelogin {
    /// The ENCRYPTION byte (without the 0x80 client-certificate bit); `None` when absent.
    pub(crate) encryption: Option<u8>,
    /// The FEDAUTHREQUIRED byte; `None` when absent.
    pub(crate) fedauth_required: Option<u8>,
    /// The client's NONCEOPT, if it sent one.
    pub(crate) nonce: Option<[u8; 32]>,
}

/// Parses a PRELOGIN payload. Unknown options are skipped by their length; options pointing outside the payload
/// are errors.
pub(crate) fn parse(payload: &[u8]) -> Result<ClientPrelogin, ParseError> {
    const WHAT: &str = "PRELOGIN option table";
    let mut r = Reader::new(payload, WHAT);
    let mut out = ClientPrelogin::default();
    let mut saw_version = false;
    // Each entry is 5 bytes; a table longer than the payload cannot end in 0xFF, so this loop is bounded.
    loop {
        let token = r.u8("option token")?;
        if token == 0xFF {
            break;
        }
        let offset = usize::from(r.u16_be("option offset")?);
        let len = usize::from(r.u16_be("option length")?);
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= payload.len())
            .ok_or_else(|| {
                ParseError::new(
                    WHAT,
                    format!("option 0x{token:02X} points past the payload"),
                )
            })?;
        let data = &payload[offset..end];
        match token {
            0x00 => saw_version = true,
            0x01 => {
                out.encryption = Some(
                    *data
                        .first()
                        .ok_or_else(|| ParseError::new(WHAT, "ENCRYPTION option is empty"))?
                        & 0x7F,
                )
            }
            0x06 => out.fedauth_required = data.first().copied(),
            0x07 => {
                let n: [u8; 32] = data.try_into().map_err(|_| {
                    ParseError::new(
                        WHAT,
                        format!("NONCEOPT has {} bytes, expected 32", data.len()),
                    )
                })?;
                out.nonce = Some(n);
            }
            _ => {}
        }
    }
    if !saw_version {
        return Err(ParseError::new(WHAT, "the VERSION option is missing"));
    }
    Ok(out)
}

/// The server's PRELOGIN answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerPrelogin {
    pub(crate) version: (u8, u8, u16),
    pub(crate) encryption: u8,
    pub(crate) fedauth_required: bool,
    pub(crate) nonce: Option<[u8; 32]>,
}

/// Builds the PRELOGIN response payload: VERSION, ENCRYPTION, INSTOPT, an empty THREADID, MARS,
/// FEDAUTHREQUIRED and, only when asked, NONCEOPT.
pub(crate) fn build(s: &ServerPrelogin) -> Vec<u8> {
    let mut version = vec![s.version.0, s.version.1];
    version.extend_from_slice(&s.version.2.to_be_bytes());
    version.extend_from_slice(&[0, 0]);
    let mut options: Vec<(u8, Vec<u8>)> = vec![
        (0x00, version),
        (0x01, vec![s.encryption]),
        (0x02, vec![0x00]),
        (0x03, vec![]),
        (0x04, vec![0x00]),
        (0x06, vec![u8::from(s.fedauth_required)]),
    ];
    if let Some(n) = s.nonce {
        options.push((0x07, n.to_vec()));
    }
    let table_len = options.len() * 5 + 1;
    let mut table = Vec::with_capacity(table_len);
    let mut data = Vec::new();
    for (token, value) in &options {
        let off = (table_len + data.len()) as u16; // a few dozen bytes
        table.push(*token);
        table.extend_from_slice(&off.to_be_bytes());
        table.extend_from_slice(&(value.len() as u16).to_be_bytes());
        data.extend_from_slice(value);
    }
    table.push(0xFF);
    table.extend_from_slice(&data);
    table
}

/// The encryption a session ends up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Negotiated {
    /// No TLS at all.
    None,
    /// TLS for the first LOGIN7 packet only.
    LoginOnly,
    /// TLS for the whole session (7.x wrapped handshake).
    Full,
}

/// Resolves the server's ENCRYPTION answer and the resulting mode from the client's value and the server's policy
/// (the table in tds-notes §2). `None` for the mode means the client will abort.
pub(crate) fn negotiate(client: u8, server: super::Encryption) -> (u8, Option<Negotiated>) {
    use super::Encryption as E;
    match (server, client) {
        (E::On, ENCRYPT_NOT_SUP) => (ENCRYPT_REQ, None),
        (E::On, ENCRYPT_OFF) => (ENCRYPT_REQ, Some(Negotiated::Full)),
        (E::On, _) => (ENCRYPT_ON, Some(Negotiated::Full)),
        (E::Off, ENCRYPT_OFF) => (ENCRYPT_OFF, Some(Negotiated::LoginOnly)),
        (E::Off, ENCRYPT_NOT_SUP) => (ENCRYPT_NOT_SUP, Some(Negotiated::None)),
        (E::Off, _) => (ENCRYPT_ON, Some(Negotiated::Full)),
        (E::NotSupported, ENCRYPT_OFF | ENCRYPT_NOT_SUP) => {
            (ENCRYPT_NOT_SUP, Some(Negotiated::None))
        }
        (E::NotSupported, _) => (ENCRYPT_NOT_SUP, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PRELOGIN the real ODBC Driver 18.6 sent (driver-facts Q1).
    const ODBC_PRELOGIN: &str = "
        00 00 24 00 06 01 00 2a 00 01 02 00 2b 00 01 03
        00 2c 00 04 04 00 30 00 01 05 00 31 00 24 06 00
        55 00 01 ff 12 06 00 02 00 00 00 00 00 00 00 00
        00 5a 98 ac f3 c2 a8 4b 77 65 8e 1f 88 85 00 14
        22 c6 bb ce 16 65 ea e3 c3 ea 57 51 52 50 08 8d
        fe 00 00 00 00 01";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(char::is_ascii_hexdigit).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_the_real_driver_prelogin() {
        // This capture was made with Encrypt=no, hence ENCRYPT_OFF.
        let p = parse(&hex(ODBC_PRELOGIN)).unwrap();
        assert_eq!(p.encryption, Some(ENCRYPT_OFF));
        assert_eq!(p.fedauth_required, Some(1));
        assert_eq!(p.nonce, None);
    }

    #[test]
    fn builds_the_recommended_response() {
        let b = build(&ServerPrelogin {
            version: (16, 0, 1000),
            encryption: ENCRYPT_ON,
            fedauth_required: true,
            nonce: None,
        });
        assert_eq!(
            b,
            hex("00001F0006 0100250001 0200260001 0300270000 0400270001 0600280001 FF 100003E80000 01 00 00 01")
        );
        // And our own parser reads it back.
        let p = parse(&b).unwrap();
        assert_eq!(p.encryption, Some(ENCRYPT_ON));
        assert_eq!(p.fedauth_required, Some(1));
    }

    #[test]
    fn rejects_options_that_point_outside() {
        let e = parse(&hex("0000FF0006 FF")).unwrap_err();
        assert!(e.to_string().contains("points past the payload"), "{e}");
        assert!(parse(&[]).is_err());
        assert!(parse(&hex("FF"))
            .unwrap_err()
            .to_string()
            .contains("VERSION"));
    }

    #[test]
    fn negotiation_follows_the_table() {
        use crate::sql::Encryption as E;
        assert_eq!(
            negotiate(ENCRYPT_OFF, E::On),
            (ENCRYPT_REQ, Some(Negotiated::Full))
        );
        assert_eq!(
            negotiate(ENCRYPT_ON, E::On),
            (ENCRYPT_ON, Some(Negotiated::Full))
        );
        assert_eq!(
            negotiate(ENCRYPT_OFF, E::Off),
            (ENCRYPT_OFF, Some(Negotiated::LoginOnly))
        );
        assert_eq!(
            negotiate(ENCRYPT_OFF, E::NotSupported),
            (ENCRYPT_NOT_SUP, Some(Negotiated::None))
        );
        assert_eq!(
            negotiate(ENCRYPT_ON, E::NotSupported),
            (ENCRYPT_NOT_SUP, None)
        );
    }
}
