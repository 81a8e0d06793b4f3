//! A PostgreSQL server a test owns, on a spare loopback port, made with
//! `initdb` in a temporary folder: it can be stopped and started again (or
//! given a streaming replica) without touching the machine's shared one.
//! Run as root, the server runs as the `postgres` user (it refuses root).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use tempfile::TempDir;

use super::redis::free_port;

/// Where `initdb` and `pg_ctl` live.
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin, or set PG_BINDIR)")
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().expect("initdb under /usr/lib/postgresql/*/bin")
}

fn as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL tool, as `postgres` when the test runs as root.
fn tool(name: &str, args: &[&str]) -> std::process::Output {
    let path = bindir().join(name);
    let mut cmd = if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn chown_to_postgres(path: &Path) {
    if as_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "chown {}", path.display());
    }
}

pub struct PgServer {
    pub port: u16,
    dir: TempDir,
    running: bool,
}

impl PgServer {
    /// A fresh cluster, started, with trust authentication for `postgres`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// A fresh cluster started with extra `-c name=value` settings.
    pub fn start_with(settings: &[&str]) -> Self {
        let dir = tempfile::Builder::new().prefix("jg-pg-").tempdir().unwrap();
        chown_to_postgres(dir.path());
        let data = dir.path().join("data");
        let out = tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conf = String::from("fsync = off\nlisten_addresses = '127.0.0.1'\n");
        for s in settings {
            conf.push_str(s);
            conf.push('\n');
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, conf.as_bytes()))
            .unwrap();
        let mut server = Self {
            port: free_port(),
            dir,
            running: false,
        };
        server.restart();
        server
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`), started, that
    /// applies what it receives `apply_delay` late
    /// (`recovery_min_apply_delay`).
    pub fn replica_of(primary: &PgServer, apply_delay: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("jg-pg-replica-")
            .tempdir()
            .unwrap();
        chown_to_postgres(dir.path());
        let data = dir.path().join("data");
        let port = primary.port.to_string();
        let out = tool(
            "pg_basebackup",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-D",
                data.to_str().unwrap(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ],
        );
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .and_then(|mut f| {
                std::io::Write::write_all(
                    &mut f,
                    format!("recovery_min_apply_delay = '{apply_delay}'\nhot_standby = on\n")
                        .as_bytes(),
                )
            })
            .unwrap();
        let mut server = Self {
            port: free_port(),
            dir,
            running: false,
        };
        server.restart();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn restart(&mut self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = format!("-p {} -k {}", self.port, self.dir.path().display());
        let out = tool(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.running = true;
    }

    /// Stops it the way an operator restarting it would (`-m fast`:
    /// sessions are disconnected, open transactions roll back).
    pub fn stop(&mut self) {
        let data = self.data_dir();
        let out = tool(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = false;
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let _ = tool(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }
    }
}
