//! The byte stream under a TDS session: message reassembly by EOM, and TLS driven by hand.
//!
//! One `rustls::ServerConnection` serves all three TLS shapes, because the emulator must decide where every
//! handshake byte goes:
//! - TDS 7.x: the handshake travels inside 0x12 packets; after it, TLS records go raw on the socket with TDS
//!   packets as their plaintext. A client that stops wrapping mid-handshake (ODBC's TLS 1.3 final flight) is
//!   followed by looking at the first byte (0x14–0x17 is a raw record, 0x12 a wrapped one).
//! - Login-only: as 7.x, but after the first TDS packet of LOGIN7 the engine is dropped without close_notify.
//!   Records are fed one at a time so no cleartext byte after the last record is swallowed.
//! - TDS 8 strict: a raw handshake first (ALPN `tds/8.0`), everything else inside.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::proto::{frame_message, PacketHeader, PacketType, ParseError, HEADER_LEN, STATUS_EOM};

/// Largest TLS record body rustls accepts (2^14 plus expansion).
const MAX_RECORD: usize = 16384 + 2048;

/// Why the stream under a session failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("the client closed the connection")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("TLS error: {0}")]
    Tls(#[from] rustls::Error),
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("a client message exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}

/// One reassembled client message.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) ty: PacketType,
    /// Status byte of the first packet (RESETCONNECTION lives there).
    pub(crate) status: u8,
    pub(crate) payload: Vec<u8>,
}

/// The stream, its buffers and the TLS engine, if any.
pub(crate) struct Wire<S> {
    stream: S,
    raw: Vec<u8>,
    tls: Option<ServerConnection>,
    plain: Vec<u8>,
    max_message: usize,
    /// Login-only encryption: drop TLS once this many more packets have been read through it.
    drop_tls_after_one_packet: bool,
}

impl<S> std::fmt::Debug for Wire<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wire")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(stream: S, max_message: usize) -> Self {
        Self {
            stream,
            raw: Vec::new(),
            tls: None,
            plain: Vec::new(),
            max_message,
            drop_tls_after_one_packet: false,
        }
    }

    /// Arranges for TLS to end right after the next packet read through it (login-only encryption).
    pub(crate) fn drop_tls_after_next_packet(&mut self) {
        self.drop_tls_after_one_packet = true;
    }

    async fn fill_raw(&mut self, n: usize) -> Result<(), WireError> {
        let mut buf = [0u8; 8192];
        while self.raw.len() < n {
            let got = self.stream.read(&mut buf).await?;
            if got == 0 {
                return Err(WireError::Closed);
            }
            self.raw.extend_from_slice(&buf[..got]);
        }
        Ok(())
    }

    fn take_raw(&mut self, n: usize) -> Vec<u8> {
        self.raw.drain(..n).collect()
    }

    /// The first byte the client will send next, without consuming it.
    pub(crate) async fn peek_byte(&mut self) -> Result<u8, WireError> {
        self.fill_raw(1).await?;
        Ok(self.raw[0])
    }

    /// Reads one TLS record from the raw stream and feeds it to the engine.
    async fn pull_record(&mut self) -> Result<(), WireError> {
        self.fill_raw(5).await?;
        let len = usize::from(u16::from_be_bytes([self.raw[3], self.raw[4]]));
        // Record types 0x14-0x17, legacy version 3.x: anything else is not TLS, and waiting for `len` bytes of
        // it would only stall until the login timeout.
        if !(0x14..=0x17).contains(&self.raw[0]) || self.raw[1] != 0x03 || len > MAX_RECORD {
            return Err(ParseError::new(
                "TLS record",
                format!(
                    "type 0x{:02X} with length {len} is not a TLS record",
                    self.raw[0]
                ),
            )
            .into());
        }
        self.fill_raw(5 + len).await?;
        let record = self.take_raw(5 + len);
        self.feed(&record, false).await
    }

    /// Feeds TLS bytes to the engine, sending whatever it answers (wrapped in 0x12 packets when `wrapped`).
    async fn feed(&mut self, mut data: &[u8], wrapped: bool) -> Result<(), WireError> {
        let Some(tls) = self.tls.as_mut() else {
            return Err(WireError::Io(io::Error::other(
                "TLS bytes arrived but no TLS engine is active",
            )));
        };
        while !data.is_empty() {
            let n = tls.read_tls(&mut data)?;
            let processed = tls.process_new_packets();
            if let Err(e) = processed {
                // Send the alert rustls queued, then fail.
                let _ = self.flush_tls(wrapped).await;
                return Err(e.into());
            }
            if n == 0 {
                break;
            }
        }
        // Move any plaintext out of the engine.
        let tls = self.tls.as_mut().ok_or(WireError::Closed)?;
        let mut buf = [0u8; 8192];
        loop {
            match tls.reader().read(&mut buf) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => self.plain.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
            if self.plain.len() > self.max_message + MAX_RECORD {
                return Err(WireError::TooLarge {
                    limit: self.max_message,
                });
            }
        }
        self.flush_tls(wrapped).await
    }

    /// Writes the engine's pending output to the socket.
    async fn flush_tls(&mut self, wrapped: bool) -> Result<(), WireError> {
        let Some(tls) = self.tls.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        while tls.wants_write() {
            tls.write_tls(&mut out)?;
        }
        if out.is_empty() {
            return Ok(());
        }
        if wrapped {
            // One write for the whole flight.
            let packets = frame_message(
                PacketType::PreLogin,
                &out,
                super::proto::DEFAULT_PACKET_SIZE,
                0,
            );
            self.stream.write_all(&packets.concat()).await?;
        } else {
            self.stream.write_all(&out).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Runs a server TLS handshake. `wrapped`: TDS 7.x, handshake bytes inside 0x12 packets; otherwise raw
    /// (TDS 8 strict).
    pub(crate) async fn tls_handshake(
        &mut self,
        config: Arc<ServerConfig>,
        wrapped: bool,
    ) -> Result<(), WireError> {
        self.tls = Some(ServerConnection::new(config)?);
        let mut wrapped = wrapped;
        loop {
            self.flush_tls(wrapped).await?;
            let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
            if !handshaking {
                tracing::debug!(
                    version = ?self.tls.as_ref().and_then(|t| t.protocol_version()),
                    client_kept_wrapping = wrapped,
                    "TLS handshake done"
                );
                return Ok(());
            }
            let first = self.peek_byte().await?;
            if wrapped && first == PacketType::PreLogin.to_byte() {
                self.fill_raw(HEADER_LEN).await?;
                let mut h = [0u8; HEADER_LEN];
                h.copy_from_slice(&self.raw[..HEADER_LEN]);
                let header = PacketHeader::parse(&h)?;
                self.fill_raw(header.length).await?;
                let packet = self.take_raw(header.length);
                self.feed(&packet[HEADER_LEN..], true).await?;
            } else if (0x14..=0x17).contains(&first) {
                // A raw record: strict mode, or a 7.x client that stopped wrapping (TLS 1.3 final flight).
                wrapped = false;
                self.pull_record().await?;
            } else {
                return Err(ParseError::new(
                    "TLS handshake",
                    format!("expected a 0x12 packet or a TLS record, got a byte 0x{first:02X}"),
                )
                .into());
            }
        }
    }

    /// The ALPN protocol the handshake selected.
    pub(crate) fn alpn(&self) -> Option<Vec<u8>> {
        self.tls
            .as_ref()
            .and_then(|t| t.alpn_protocol().map(<[u8]>::to_vec))
    }

    async fn read_app(&mut self, n: usize) -> Result<Vec<u8>, WireError> {
        if self.tls.is_some() {
            while self.plain.len() < n {
                self.pull_record().await?;
            }
            Ok(self.plain.drain(..n).collect())
        } else {
            self.fill_raw(n).await?;
            Ok(self.take_raw(n))
        }
    }

    /// Reads one client message, reassembling packets until EOM.
    pub(crate) async fn read_message(&mut self) -> Result<Message, WireError> {
        let mut payload = Vec::new();
        let mut first: Option<(PacketType, u8)> = None;
        loop {
            let h = self.read_app(HEADER_LEN).await?;
            let mut hb = [0u8; HEADER_LEN];
            hb.copy_from_slice(&h);
            let header = PacketHeader::parse(&hb)?;
            if payload.len() + header.length > self.max_message {
                return Err(WireError::TooLarge {
                    limit: self.max_message,
                });
            }
            let body = self.read_app(header.length - HEADER_LEN).await?;
            if self.drop_tls_after_one_packet && self.tls.is_some() {
                self.drop_tls_after_one_packet = false;
                self.tls = None;
                // Anything already decrypted stays first in line.
                let mut rest = std::mem::take(&mut self.plain);
                rest.append(&mut self.raw);
                self.raw = rest;
            }
            payload.extend_from_slice(&body);
            let (ty, status) = *first.get_or_insert((header.ty, header.status));
            if header.ty != ty {
                return Err(ParseError::new(
                    "TDS packet",
                    format!(
                        "packet type changed from {ty:?} to {:?} inside one message",
                        header.ty
                    ),
                )
                .into());
            }
            if header.status & STATUS_EOM != 0 {
                return Ok(Message {
                    ty,
                    status,
                    payload,
                });
            }
        }
    }

    /// Sends one message, split into packets of `packet_size`.
    pub(crate) async fn write_message(
        &mut self,
        ty: PacketType,
        payload: &[u8],
        packet_size: usize,
        spid: u16,
    ) -> Result<(), WireError> {
        for p in frame_message(ty, payload, packet_size, spid) {
            self.write_raw_or_tls(&p).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Sends bytes as they are (inside TLS when it is on): the garbage fault knob uses it.
    pub(crate) async fn write_raw_or_tls(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.writer().write_all(bytes)?;
                self.flush_tls(false).await
            }
            None => {
                self.stream.write_all(bytes).await?;
                Ok(())
            }
        }
    }

    /// Closes the write side (best effort).
    pub(crate) async fn shutdown(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            tls.send_close_notify();
            let _ = self.flush_tls(false).await;
        }
        let _ = self.stream.shutdown().await;
    }
}
