//! The `mssql-entra-emulator` binary: prints endpoints and the client environment, stops cleanly on Ctrl-C.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_mssql-entra-emulator");

/// Kills the child if the test fails before it exits.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn prints_the_environment_and_stops_on_sigint() {
    let dir = std::env::temp_dir().join(format!(
        "mssql-entra-emulator-bin-test-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("directory.toml");
    std::fs::write(
        &config,
        "[tenant]\ndomain = \"contoso.test\"\n[[apps]]\nname = \"reporting\"\nsecrets = [\"reporting-secret-value\"]\n[[managed_identities]]\nname = \"web\"\nkind = \"system\"\n",
    )
    .unwrap();
    let mut child = Reap(
        Command::new(BIN)
            .args([
                "--config",
                config.to_str().unwrap(),
                "--token-lifetime",
                "120",
                "--output-dir",
                dir.to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut banner = String::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        banner.push_str(&line);
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    for expected in [
        "export IDENTITY_ENDPOINT='http://127.0.0.1:",
        "export SSL_CERT_FILE=",
        "export AZURE_AUTHORITY_HOST='https://127.0.0.1:",
        "app reporting",
        "tenant ",
        "(contoso.test)",
    ] {
        assert!(
            banner.contains(expected),
            "{expected} missing from:\n{banner}"
        );
    }
    assert!(
        !banner.contains("reporting-secret-value"),
        "client secrets are not printed"
    );
    assert!(dir.join("ca.pem").exists());

    let status = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(rest.contains("stopped"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_config_names_the_problem_and_fails() {
    let path = std::env::temp_dir().join(format!(
        "mssql-entra-emulator-bad-{}.toml",
        std::process::id()
    ));
    std::fs::write(
        &path,
        "[[managed_identities]]\nname = \"x\"\nkind = \"both\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kind must be \"system\" or \"user\""),
        "{stderr}"
    );
}
