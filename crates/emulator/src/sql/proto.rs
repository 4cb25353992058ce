//! TDS building blocks: packet headers, a bounds-checked reader for client messages and the encoders of the
//! server tokens the emulator sends (MS-TDS §2.2.7).
//!
//! Everything here is pure: bytes in, bytes out, no I/O. Multi-byte integers are little-endian unless a function
//! says otherwise (the packet header and the PRELOGIN option table are big-endian).

use std::fmt;

/// Size of the TDS packet header.
pub(crate) const HEADER_LEN: usize = 8;
/// The packet size every connection starts with, and the one the emulator negotiates when the client asks for 0.
pub(crate) const DEFAULT_PACKET_SIZE: usize = 4096;
/// The smallest and largest packet sizes a client may negotiate.
pub(crate) const MIN_PACKET_SIZE: usize = 512;
pub(crate) const MAX_PACKET_SIZE: usize = 32767;

/// Status bit: last packet of a message.
pub(crate) const STATUS_EOM: u8 = 0x01;
/// Status bit: the client wants the session reset before this request (pooled reuse).
pub(crate) const STATUS_RESET_CONNECTION: u8 = 0x08;
/// Status bit: reset, keeping the transaction.
pub(crate) const STATUS_RESET_SKIP_TRAN: u8 = 0x10;

/// TDS packet (message) types the emulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PacketType {
    SqlBatch,
    Rpc,
    TabularResult,
    Attention,
    FedAuthToken,
    TransactionManager,
    Login7,
    Sspi,
    PreLogin,
    Other(u8),
}

impl PacketType {
    pub(crate) fn from_byte(b: u8) -> Self {
        match b {
            0x01 => Self::SqlBatch,
            0x03 => Self::Rpc,
            0x04 => Self::TabularResult,
            0x06 => Self::Attention,
            0x08 => Self::FedAuthToken,
            0x0E => Self::TransactionManager,
            0x10 => Self::Login7,
            0x11 => Self::Sspi,
            0x12 => Self::PreLogin,
            other => Self::Other(other),
        }
    }

    pub(crate) fn to_byte(self) -> u8 {
        match self {
            Self::SqlBatch => 0x01,
            Self::Rpc => 0x03,
            Self::TabularResult => 0x04,
            Self::Attention => 0x06,
            Self::FedAuthToken => 0x08,
            Self::TransactionManager => 0x0E,
            Self::Login7 => 0x10,
            Self::Sspi => 0x11,
            Self::PreLogin => 0x12,
            Self::Other(b) => b,
        }
    }
}

/// A decoded 8-byte packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketHeader {
    pub(crate) ty: PacketType,
    pub(crate) status: u8,
    /// Whole packet length, header included.
    pub(crate) length: usize,
}

impl PacketHeader {
    pub(crate) fn parse(h: &[u8; HEADER_LEN]) -> Result<Self, ParseError> {
        let length = usize::from(u16::from_be_bytes([h[2], h[3]]));
        if length < HEADER_LEN {
            return Err(ParseError::new(
                "packet header",
                "Length is smaller than the 8-byte header",
            ));
        }
        Ok(Self {
            ty: PacketType::from_byte(h[0]),
            status: h[1],
            length,
        })
    }
}

/// Splits `payload` into packets of at most `packet_size` bytes (header included) with EOM on the last one,
/// packet ids counting from 1 and the session id in SPID.
pub(crate) fn frame_message(
    ty: PacketType,
    payload: &[u8],
    packet_size: usize,
    spid: u16,
) -> Vec<Vec<u8>> {
    let chunk = packet_size.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE) - HEADER_LEN;
    let mut packets = Vec::with_capacity(payload.len() / chunk + 1);
    let mut chunks = payload.chunks(chunk).peekable();
    let mut id: u8 = 1;
    if chunks.peek().is_none() {
        packets.push(packet(ty, STATUS_EOM, spid, id, &[]));
        return packets;
    }
    while let Some(body) = chunks.next() {
        let status = if chunks.peek().is_none() {
            STATUS_EOM
        } else {
            0
        };
        packets.push(packet(ty, status, spid, id, body));
        id = id.wrapping_add(1);
    }
    packets
}

fn packet(ty: PacketType, status: u8, spid: u16, id: u8, body: &[u8]) -> Vec<u8> {
    // `body` is at most MAX_PACKET_SIZE - 8 bytes (see `frame_message`), so the length fits in a u16.
    let len = u16::try_from(body.len() + HEADER_LEN).unwrap_or(u16::MAX);
    let mut p = Vec::with_capacity(body.len() + HEADER_LEN);
    p.push(ty.to_byte());
    p.push(status);
    p.extend_from_slice(&len.to_be_bytes());
    p.extend_from_slice(&spid.to_be_bytes());
    p.push(id);
    p.push(0);
    p.extend_from_slice(body);
    p
}

/// A client message the server could not parse: which structure, and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// The structure being parsed, e.g. "LOGIN7" or "PRELOGIN option table".
    pub(crate) what: &'static str,
    /// What was wrong.
    pub(crate) detail: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, detail: impl Into<String>) -> Self {
        Self {
            what,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.detail)
    }
}

impl std::error::Error for ParseError {}

/// A bounds-checked cursor over a client message.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], ParseError> {
        if n > self.remaining() {
            return Err(ParseError::new(
                self.what,
                format!(
                    "{field} needs {n} bytes at offset {} but only {} remain",
                    self.pos,
                    self.remaining()
                ),
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8, ParseError> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn u16_le(&mut self, field: &str) -> Result<u16, ParseError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    pub(crate) fn u16_be(&mut self, field: &str) -> Result<u16, ParseError> {
        let b = self.take(2, field)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn u32_le(&mut self, field: &str) -> Result<u32, ParseError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// Decodes UTF-16LE bytes; an odd byte count is an error, unpaired surrogates become U+FFFD.
pub(crate) fn utf16le(bytes: &[u8], what: &'static str) -> Result<String, ParseError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseError::new(
            what,
            format!("UTF-16 text has an odd byte count ({})", bytes.len()),
        ));
    }
    let units = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]));
    Ok(char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

pub(crate) fn utf16le_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Skips the ALL_HEADERS block that starts SQL batch, RPC and transaction-manager requests and returns the rest.
pub(crate) fn skip_all_headers(payload: &[u8]) -> Result<&[u8], ParseError> {
    let mut r = Reader::new(payload, "ALL_HEADERS");
    let total = r.u32_le("TotalLength")? as usize;
    if total < 4 || total > payload.len() {
        return Err(ParseError::new(
            "ALL_HEADERS",
            format!(
                "TotalLength {total} is outside 4..={} (the request length)",
                payload.len()
            ),
        ));
    }
    Ok(&payload[total..])
}

/// SQL_Latin1_General_CP1_CI_AS: LCID 0x0409 with ignore-case, ignore-width and ignore-kana, sort id 52.
pub(crate) const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

// ---- server tokens -------------------------------------------------------------------------------------------

pub(crate) const DONE_FINAL: u16 = 0x0000;
pub(crate) const DONE_MORE: u16 = 0x0001;
pub(crate) const DONE_ERROR: u16 = 0x0002;
pub(crate) const DONE_COUNT: u16 = 0x0010;
pub(crate) const DONE_ATTN: u16 = 0x0020;

/// The CurCmd value of a SELECT's DONE token.
pub(crate) const CURCMD_SELECT: u16 = 0x00C1;

/// Builds a token stream (the payload of one 0x04 message).
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub(crate) buf: Vec<u8>,
}

fn b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8); // at most 255 by the `take` above
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

fn us_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(u16::MAX as usize).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes()); // at most u16::MAX by the `take` above
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// A message as ERROR/INFO tokens carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerMessage {
    pub(crate) number: u32,
    pub(crate) state: u8,
    pub(crate) class: u8,
    pub(crate) text: String,
}

impl ServerMessage {
    pub(crate) fn new(number: u32, state: u8, class: u8, text: impl Into<String>) -> Self {
        Self {
            number,
            state,
            class,
            text: text.into(),
        }
    }
}

impl Tokens {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn with_u16_len(&mut self, token: u8, body: impl FnOnce(&mut Vec<u8>)) {
        let mut b = Vec::new();
        body(&mut b);
        self.buf.push(token);
        let len = u16::try_from(b.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&b[..usize::from(len)]);
    }

    /// ENVCHANGE with B_VARCHAR new and old values (database, language, packet size).
    pub(crate) fn env_change_text(&mut self, ty: u8, new: &str, old: &str) {
        self.with_u16_len(0xE3, |b| {
            b.push(ty);
            b_varchar(b, new);
            b_varchar(b, old);
        });
    }

    /// ENVCHANGE with B_VARBYTE values (collation, transactions, reset ack).
    pub(crate) fn env_change_bytes(&mut self, ty: u8, new: &[u8], old: &[u8]) {
        self.with_u16_len(0xE3, |b| {
            b.push(ty);
            b.push(new.len().min(255) as u8);
            b.extend_from_slice(&new[..new.len().min(255)]);
            b.push(old.len().min(255) as u8);
            b.extend_from_slice(&old[..old.len().min(255)]);
        });
    }

    fn message(&mut self, token: u8, m: &ServerMessage, server: &str) {
        self.with_u16_len(token, |b| {
            b.extend_from_slice(&m.number.to_le_bytes());
            b.push(m.state);
            b.push(m.class);
            us_varchar(b, &m.text);
            b_varchar(b, server);
            b_varchar(b, "");
            b.extend_from_slice(&1u32.to_le_bytes());
        });
    }

    pub(crate) fn error(&mut self, m: &ServerMessage, server: &str) {
        self.message(0xAA, m, server);
    }

    pub(crate) fn info(&mut self, m: &ServerMessage, server: &str) {
        self.message(0xAB, m, server);
    }

    /// LOGINACK: `tds_version` as the DWORD the client sent (written big-endian, as the spec's examples do).
    pub(crate) fn login_ack(&mut self, tds_version: u32, version: (u8, u8, u16)) {
        self.with_u16_len(0xAD, |b| {
            b.push(1); // SQL_TSQL
            b.extend_from_slice(&tds_version.to_be_bytes());
            b_varchar(b, "Microsoft SQL Server");
            b.push(version.0);
            b.push(version.1);
            b.extend_from_slice(&version.2.to_be_bytes());
        });
    }

    /// FEATUREEXTACK with a FEDAUTH entry, preceded by a SESSIONRECOVERY entry when `session_recovery` is
    /// `Some` (its data: the initial session state, a SessionStateDataSet, possibly empty).
    pub(crate) fn feature_ext_ack(
        &mut self,
        nonce: Option<&[u8; 32]>,
        session_recovery: Option<&[u8]>,
    ) {
        self.buf.push(0xAE);
        if let Some(state) = session_recovery {
            self.buf.push(0x01);
            // Bounded by the caller: a few bytes of session state.
            self.buf
                .extend_from_slice(&(state.len() as u32).to_le_bytes());
            self.buf.extend_from_slice(state);
        }
        self.buf.push(0x02);
        match nonce {
            Some(n) => {
                self.buf.extend_from_slice(&32u32.to_le_bytes());
                self.buf.extend_from_slice(n);
            }
            None => self.buf.extend_from_slice(&0u32.to_le_bytes()),
        }
        self.buf.push(0xFF);
    }

    /// FEDAUTHINFO with the SPN entry first (as Azure sends it), then the STS URL.
    pub(crate) fn fedauth_info(&mut self, sts_url: &str, spn: &str) {
        let spn = utf16le_bytes(spn);
        let sts = utf16le_bytes(sts_url);
        let table = 4 + 2 * 9;
        let mut body = Vec::with_capacity(table + spn.len() + sts.len());
        body.extend_from_slice(&2u32.to_le_bytes());
        let spn_off = table;
        let sts_off = table + spn.len();
        for (id, data, off) in [(0x02u8, &spn, spn_off), (0x01u8, &sts, sts_off)] {
            body.push(id);
            body.extend_from_slice(&(data.len() as u32).to_le_bytes());
            body.extend_from_slice(&(off as u32).to_le_bytes());
        }
        body.extend_from_slice(&spn);
        body.extend_from_slice(&sts);
        self.buf.push(0xEE);
        self.buf
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(&body);
    }

    fn done_token(&mut self, token: u8, status: u16, cur_cmd: u16, rows: u64) {
        self.buf.push(token);
        self.buf.extend_from_slice(&status.to_le_bytes());
        self.buf.extend_from_slice(&cur_cmd.to_le_bytes());
        self.buf.extend_from_slice(&rows.to_le_bytes());
    }

    pub(crate) fn done(&mut self, status: u16, cur_cmd: u16, rows: u64) {
        self.done_token(0xFD, status, cur_cmd, rows);
    }

    pub(crate) fn done_proc(&mut self, status: u16) {
        self.done_token(0xFE, status, 0, 0);
    }

    /// COLMETADATA + ROW for a single-row result.
    pub(crate) fn single_row(&mut self, columns: &[(String, Value)]) {
        self.buf.push(0x81);
        self.buf
            .extend_from_slice(&(columns.len() as u16).to_le_bytes());
        for (name, value) in columns {
            self.buf.extend_from_slice(&0u32.to_le_bytes()); // UserType
            match value {
                Value::Int(_) => {
                    self.buf.extend_from_slice(&0x0021u16.to_le_bytes()); // nullable | computed
                    self.buf.extend_from_slice(&[0x26, 0x04]); // INTN(4)
                }
                Value::NVarChar(_, max_chars) => {
                    self.buf.extend_from_slice(&0x0021u16.to_le_bytes());
                    self.buf.push(0xE7);
                    let max_bytes = (max_chars.min(&4000) * 2) as u16; // at most 8000
                    self.buf.extend_from_slice(&max_bytes.to_le_bytes());
                    self.buf.extend_from_slice(&COLLATION);
                }
            }
            b_varchar(&mut self.buf, name);
        }
        self.buf.push(0xD1);
        for (_, value) in columns {
            match value {
                Value::Int(None) => self.buf.push(0),
                Value::NVarChar(None, _) => self.buf.extend_from_slice(&0xFFFFu16.to_le_bytes()),
                Value::Int(Some(v)) => {
                    self.buf.push(4);
                    self.buf.extend_from_slice(&v.to_le_bytes());
                }
                Value::NVarChar(Some(s), max_chars) => {
                    let units: Vec<u16> = s.encode_utf16().take((*max_chars).min(4000)).collect();
                    self.buf
                        .extend_from_slice(&((units.len() * 2) as u16).to_le_bytes());
                    for u in units {
                        self.buf.extend_from_slice(&u.to_le_bytes());
                    }
                }
            }
        }
    }
}

/// A scalar in a one-row result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// A nullable INT.
    Int(Option<i32>),
    /// A nullable NVARCHAR(n), n in characters (at most 4000).
    NVarChar(Option<String>, usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_ext_ack_puts_session_recovery_before_fedauth() {
        let mut t = Tokens::new();
        t.feature_ext_ack(None, None);
        assert_eq!(t.into_bytes(), [0xAE, 0x02, 0, 0, 0, 0, 0xFF]);
        let mut t = Tokens::new();
        t.feature_ext_ack(None, Some(&[]));
        assert_eq!(
            t.into_bytes(),
            [0xAE, 0x01, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0xFF]
        );
        let mut t = Tokens::new();
        t.feature_ext_ack(Some(&[9; 32]), Some(&[0x00, 0x01, 0x01]));
        let b = t.into_bytes();
        assert_eq!(&b[..9], [0xAE, 0x01, 3, 0, 0, 0, 0x00, 0x01, 0x01]);
        assert_eq!(&b[9..14], [0x02, 32, 0, 0, 0]);
        assert_eq!(b.len(), 14 + 32 + 1);
    }

    #[test]
    fn framing_splits_at_packet_size_with_eom_on_the_last_packet() {
        let payload = vec![7u8; 5000];
        let packets = frame_message(PacketType::TabularResult, &payload, 4096, 51);
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].len(), 4096);
        assert_eq!(
            &packets[0][..8],
            &[0x04, 0x00, 0x10, 0x00, 0x00, 0x33, 0x01, 0x00]
        );
        assert_eq!(packets[1][1], STATUS_EOM);
        assert_eq!(packets[1][6], 2);
        assert_eq!(packets[0].len() + packets[1].len() - 16, 5000);
    }

    #[test]
    fn empty_message_is_one_eom_packet() {
        let packets = frame_message(PacketType::TabularResult, &[], 4096, 1);
        assert_eq!(
            packets,
            vec![vec![0x04, 0x01, 0x00, 0x08, 0x00, 0x01, 0x01, 0x00]]
        );
    }

    #[test]
    fn select_one_matches_the_spec_bytes() {
        let mut t = Tokens::new();
        t.single_row(&[(String::new(), Value::Int(Some(1)))]);
        t.done(DONE_COUNT, CURCMD_SELECT, 1);
        let expected: Vec<u8> = vec![
            0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x26, 0x04, 0x00, 0xD1, 0x04,
            0x01, 0x00, 0x00, 0x00, 0xFD, 0x10, 0x00, 0xC1, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00,
        ];
        assert_eq!(t.into_bytes(), expected);
    }

    #[test]
    fn error_token_length_is_little_endian_and_counts_the_body() {
        let mut t = Tokens::new();
        t.error(&ServerMessage::new(18456, 1, 14, "x"), "s");
        let b = t.into_bytes();
        assert_eq!(b[0], 0xAA);
        let len = usize::from(u16::from_le_bytes([b[1], b[2]]));
        assert_eq!(len, b.len() - 3);
        assert_eq!(&b[3..7], &18456u32.to_le_bytes());
    }

    #[test]
    fn fedauth_info_offsets_count_from_the_count_field() {
        let mut t = Tokens::new();
        t.fedauth_info("https://sts/", "https://database.windows.net/");
        let b = t.into_bytes();
        assert_eq!(b[0], 0xEE);
        let body = &b[5..];
        assert_eq!(
            u32::from_le_bytes(b[1..5].try_into().unwrap()) as usize,
            body.len()
        );
        // SPN entry first, at offset 22.
        assert_eq!(body[4], 0x02);
        assert_eq!(u32::from_le_bytes(body[9..13].try_into().unwrap()), 22);
        let sts_len = u32::from_le_bytes(body[14..18].try_into().unwrap()) as usize;
        let sts_off = u32::from_le_bytes(body[18..22].try_into().unwrap()) as usize;
        assert_eq!(
            utf16le(&body[sts_off..sts_off + sts_len], "t").unwrap(),
            "https://sts/"
        );
    }

    #[test]
    fn all_headers_out_of_range_is_an_error_not_a_panic() {
        assert!(skip_all_headers(&[0xFF, 0xFF, 0, 0]).is_err());
        assert!(skip_all_headers(&[1, 0, 0, 0]).is_err());
        assert_eq!(skip_all_headers(&[4, 0, 0, 0, 9]).unwrap(), &[9]);
    }
}
