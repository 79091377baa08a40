//! A PostgreSQL server of the test's own, so a test can stop, restart, pause (SIGSTOP) and
//! resume it without disturbing the shared server other tests use.
//!
//! It runs the server binaries of the machine's PostgreSQL install (`initdb`, `pg_ctl`, as
//! CI's `.ci/run` installs them) on a free port on 127.0.0.1 with a data directory under the
//! system temp dir. The server runs as the `postgres` user when the test runs as root
//! (`initdb` refuses root). `start` returns `None`, after printing why, only when no server
//! binaries exist and `HOOKRELAY_TEST_DATABASE_URL` is unset; with the variable set (as in
//! CI) missing binaries fail the test instead of skipping it.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A private PostgreSQL server; stopped (and its data removed) on drop.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("pg_ctl").exists() && p.join("initdb").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl PrivatePostgres {
    /// Creates and starts a fresh server, or `None` (with a visible message) when the machine
    /// has no PostgreSQL server binaries and no test database is configured.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = server_bin() else {
            if std::env::var("HOOKRELAY_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
                panic!(
                    "{test}: HOOKRELAY_TEST_DATABASE_URL is set but no PostgreSQL server binaries exist under /usr/lib/postgresql"
                );
            }
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED {test}: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)"
            );
            return None;
        };
        let as_postgres = is_root();
        let data = std::env::temp_dir().join(format!(
            "hookrelay-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let server = PrivatePostgres {
            bin,
            data,
            port: free_port(),
            as_postgres,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:", server.data.to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the data directory failed");
        }
        let init = format!(
            "{} -D {} -U postgres --auth=trust -E UTF8 >/dev/null",
            server.bin.join("initdb").display(),
            server.data.display()
        );
        assert!(server.shell(&init), "initdb failed");
        server.start_again();
        Some(server)
    }

    fn shell(&self, script: &str) -> bool {
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("su");
            c.args(["postgres", "-s", "/bin/sh", "-c", script]);
            c
        } else {
            let mut c = Command::new("sh");
            c.args(["-c", script]);
            c
        };
        cmd.status().map(|s| s.success()).unwrap_or(false)
    }

    fn pg_ctl(&self, args: &str) -> bool {
        let script = format!(
            "{} -D {} -l {} {}",
            self.bin.join("pg_ctl").display(),
            self.data.display(),
            self.data.join("server.log").display(),
            args
        );
        self.shell(&script)
    }

    /// The URL of the `postgres` database on this server.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Starts the (stopped) server and waits until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-w -t 60 -o \"-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='' -c max_connections=100 -c fsync=off\" start >/dev/null",
            self.port
        );
        assert!(self.pg_ctl(&opts), "pg_ctl start failed");
    }

    /// Stops the server fast (open sessions are terminated, as in a restart for maintenance).
    pub fn stop(&self) {
        assert!(
            self.pg_ctl("-w -t 60 -m fast stop >/dev/null"),
            "pg_ctl stop failed"
        );
    }

    /// Stops and starts the server.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// The postmaster's pid.
    pub fn pid(&self) -> u32 {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the postmaster and every backend: the server
    /// stops answering without closing its connections.
    pub fn signal_all(&self, signal: &str) {
        let pid = self.pid();
        // The postmaster and its children (backends, background workers).
        let _ = Command::new("pkill")
            .args([&format!("-{signal}"), "-P", &pid.to_string()])
            .status();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status();
    }

    /// Waits until `f` is true, at most `limit`.
    pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if f() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.signal_all("CONT");
        let _ = self.pg_ctl("-w -t 30 -m immediate stop >/dev/null 2>&1");
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
