//! Raw-socket checks: malformed input, oversized messages and silent clients end the session without harming
//! the server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

fn expect_closed(mut sock: TcpStream, within: Duration, what: &str) {
    sock.set_read_timeout(Some(within)).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!(
                "{what}: the server did not close the connection within {within:?} ({e}, {:?})",
                started.elapsed()
            ),
        }
    }
}

fn still_serves(s: &Server) {
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    assert_eq!(scalar(&conn, "SELECT 1").unwrap().unwrap(), "1");
}

#[test]
fn garbage_first_bytes_are_dropped() {
    let s = Server::start();
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0x12, 0x01, 0x00, 0x02, 0, 0, 0, 0],
        &[0x16; 64],
        &[
            0x10, 1, 0, 20, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ],
    ] {
        let mut sock = TcpStream::connect(s.addr).unwrap();
        sock.write_all(garbage).unwrap();
        expect_closed(sock, Duration::from_secs(5), &format!("{garbage:02X?}"));
    }
    still_serves(&s);
    assert!(
        s.stats().protocol_errors() >= 4,
        "{}",
        s.stats().protocol_errors()
    );
}

#[test]
fn oversized_messages_are_refused() {
    let s = Server::start_with(|c| c.max_message_size = 64 * 1024);
    let mut sock = TcpStream::connect(s.addr).unwrap();
    // PRELOGIN packets without EOM, forever.
    let mut packet = vec![0x12, 0x00, 0x10, 0x00, 0, 0, 1, 0];
    packet.resize(4096, 0xAB);
    for _ in 0..40 {
        if sock.write_all(&packet).is_err() {
            break;
        }
    }
    expect_closed(sock, Duration::from_secs(5), "oversized");
    still_serves(&s);
}

#[test]
fn silent_clients_are_closed_after_the_login_timeout() {
    let s = Server::start_with(|c| c.login_timeout = Duration::from_millis(500));
    let sock = TcpStream::connect(s.addr).unwrap();
    let started = Instant::now();
    expect_closed(sock, Duration::from_secs(5), "silent");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[test]
fn idle_sessions_are_closed() {
    let s = Server::start_with(|c| c.idle_timeout = Duration::from_millis(300));
    let conn = s.connect_token(APP_TOKEN, "appdb", "Encrypt=yes").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let e = scalar(&conn, "SELECT 1").map(|_| ()).unwrap_err();
    assert!(diag(&e).0.starts_with("08"), "{}", diag(&e).2);
}
