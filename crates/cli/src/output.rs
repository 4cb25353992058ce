//! [`Out`]: results to stdout, without panicking when the reader goes away (`| head`).

use std::io::{self, Write};

use serde::Serialize;

use crate::exit::Failure;

/// Where results go. A closed pipe ends the output quietly; other write errors are failures.
#[derive(Debug)]
pub(crate) struct Out {
    stdout: io::Stdout,
    closed: bool,
}

impl Out {
    pub(crate) fn stdout() -> Self {
        Self {
            stdout: io::stdout(),
            closed: false,
        }
    }

    /// Writes `text` as is.
    pub(crate) fn text(&mut self, text: &str) -> Result<(), Failure> {
        if self.closed {
            return Ok(());
        }
        let mut lock = self.stdout.lock();
        match lock.write_all(text.as_bytes()).and_then(|()| lock.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(Failure::internal(format!(
                "cannot write to standard output: {e}"
            ))),
        }
    }

    /// Writes `text` and a newline.
    pub(crate) fn line(&mut self, text: &str) -> Result<(), Failure> {
        self.text(&format!("{text}\n"))
    }

    /// Writes `value` as pretty JSON and a newline.
    pub(crate) fn json<T: Serialize>(&mut self, value: &T) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::internal(format!("cannot serialise the result: {e}")))?;
        self.line(&text)
    }
}
