//! `hookrelay`: sign, verify, receive and send webhook requests from the command line, and
//! serve the management API with its dispatcher.
//!
//! Exit codes: 0 success, 1 the operation failed (a signature did not verify, a delivery gave
//! up or its destination was refused),
//! 2 usage errors (bad arguments, unreadable body file, invalid secret).

mod args;
mod database;
mod listen;
mod log;
mod relay;
mod send;
mod serve;
mod sign;
mod verify;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

/// A failure to report on stderr, with the exit code it maps to.
pub(crate) enum Failure {
    /// Exit 1: the command ran but the answer is "no".
    Failed(String),
    /// Exit 2: the command could not run as asked.
    Usage(String),
}

/// `err` and its causes, outermost first, as `a: b: c`: each error's message once (the
/// library's errors leave their cause out of their own message and give it as the source).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let result = match cli.command {
        args::Command::Sign(args) => sign::run(&args),
        args::Command::Verify(args) => verify::run(&args),
        args::Command::Listen(args) => listen::run(&args),
        args::Command::Send(args) => send::run(&args),
        args::Command::Serve(args) => serve::run(&args),
        args::Command::Relay(args) => relay::run(&args),
    };
    match result {
        Ok(output) => {
            let mut stdout = std::io::stdout().lock();
            if stdout
                .write_all(output.as_bytes())
                .and_then(|()| stdout.flush())
                .is_err()
            {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Failed(reason)) => {
            eprintln!("hookrelay: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(reason)) => {
            eprintln!("hookrelay: {reason}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::chain;

    #[test]
    fn chain_prints_each_message_once() {
        let store = std::io::Error::other("disk full");
        let transport = hookrelay::send::ReqwestTransport::builder()
            .root_certificate(reqwest::Certificate::from_der(b"not a certificate").unwrap())
            .build()
            .unwrap_err();
        let text = chain(&transport);
        assert!(text.starts_with("cannot build the http client: "), "{text}");
        assert_eq!(
            text.matches("cannot build the http client").count(),
            1,
            "{text}"
        );
        assert_eq!(chain(&store), "disk full");

        let receiver = hookrelay::receive::Receiver::builder(hookrelay::profile::Profile::TaskOn)
            .build()
            .unwrap_err();
        assert_eq!(
            chain(&receiver),
            "the receiver's profile is missing a setting: the taskon profile needs an api key"
        );
    }
}
