//! Users: the `users:` of config.yaml merged with `<data_dir>/users.yaml`, and the
//! `p2psip user add|del|list|passwd` commands that manage that file.

use crate::config::{Loaded, UserEntry};
use serde::{Deserialize, Serialize};
use sip::auth::{Algorithm, ha1};
use sip::registrar::{Secret, User};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Name of the users file inside the data directory.
pub const USERS_FILE: &str = "users.yaml";

/// Prefix of the demo passwords in the embedded default configuration.
pub const DEMO_PASSWORD_PREFIX: &str = "p2psip-demo-";

/// `data/users.yaml`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFile {
    /// The users.
    #[serde(default)]
    pub users: Vec<UserEntry>,
}

/// Path of the users file of a configuration.
pub fn users_path(loaded: &Loaded) -> PathBuf {
    loaded.data_dir().join(USERS_FILE)
}

/// Reads the users file; a missing file is an empty list.
pub fn read_users_file(path: &Path) -> Result<UsersFile, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(UsersFile::default()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(UsersFile::default());
    }
    let file: UsersFile =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, u) in file.users.iter().enumerate() {
        if let Some(p) = u.problem() {
            return Err(format!("{}: users[{i}]: {p}", path.display()));
        }
    }
    Ok(file)
}

fn write_users_file(path: &Path, file: &UsersFile) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut text = serde_saphyr::to_string(file).map_err(|e| e.to_string())?;
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, format!("# Managed by `p2psip user`.\n{text}"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn to_user(e: &UserEntry) -> User {
    let secret = match &e.password {
        Some(p) => Secret::Password(p.clone()),
        None => Secret::Ha1 {
            md5: e.ha1.as_ref().map(|h| h.to_ascii_lowercase()),
            sha256: e.ha1_sha256.as_ref().map(|h| h.to_ascii_lowercase()),
        },
    };
    User {
        name: e.name.clone(),
        secret,
        display_name: e.display_name.clone(),
    }
}

/// Config users merged with the users file (the file wins for the same name).
pub fn load_users(loaded: &Loaded) -> Result<Vec<User>, String> {
    let file = read_users_file(&users_path(loaded))?;
    let mut out: Vec<User> = loaded
        .config
        .users
        .iter()
        .filter(|u| !file.users.iter().any(|f| f.name == u.name))
        .map(to_user)
        .collect();
    out.extend(file.users.iter().map(to_user));
    Ok(out)
}

/// The users of the users file alone (the ones `p2psip user` manages; shared through the
/// overlay, docs/SECURITY.md "Shared SIP users").
pub fn file_users(loaded: &Loaded) -> Result<Vec<User>, String> {
    Ok(read_users_file(&users_path(loaded))?
        .users
        .iter()
        .map(to_user)
        .collect())
}

/// Names of users still on a demo password.
pub fn demo_users(users: &[User]) -> Vec<String> {
    users
        .iter()
        .filter(|u| matches!(&u.secret, Secret::Password(p) if p.starts_with(DEMO_PASSWORD_PREFIX)))
        .map(|u| u.name.clone())
        .collect()
}

/// `p2psip user ...`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Add a user (to <data_dir>/users.yaml); prints a generated password when none is given.
    Add {
        /// User name (the part before @domain).
        name: String,
        /// Password; stored only as HA1 hashes for the configured domain.
        #[arg(long)]
        password: Option<String>,
        /// Display name.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Remove a user from <data_dir>/users.yaml.
    Del {
        /// User name.
        name: String,
    },
    /// List users from config.yaml and <data_dir>/users.yaml.
    List,
    /// Change a user's password (in <data_dir>/users.yaml).
    Passwd {
        /// User name.
        name: String,
        /// New password; a generated one is printed when omitted.
        #[arg(long)]
        password: Option<String>,
    },
}

fn generated_password() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

fn hashed_entry(
    name: &str,
    domain: &str,
    password: &str,
    display_name: Option<String>,
) -> UserEntry {
    UserEntry {
        name: name.to_owned(),
        password: None,
        ha1: Some(ha1(Algorithm::Md5, name, domain, password)),
        ha1_sha256: Some(ha1(Algorithm::Sha256, name, domain, password)),
        display_name,
    }
}

/// Runs a user command against the configuration's data directory.
pub fn run(loaded: &Loaded, cmd: UserCommand) -> ExitCode {
    match run_inner(loaded, cmd) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(loaded: &Loaded, cmd: UserCommand) -> Result<(), String> {
    let path = users_path(loaded);
    let domain = loaded.config.sip.domain.clone();
    let mut file = read_users_file(&path)?;
    let in_config = |name: &str| loaded.config.users.iter().any(|u| u.name == name);
    let hint = "a running node picks the change up on SIGHUP";
    match cmd {
        UserCommand::Add {
            name,
            password,
            display_name,
        } => {
            if file.users.iter().any(|u| u.name == name) {
                return Err(format!(
                    "user {name} already exists in {}; use `p2psip user passwd`",
                    path.display()
                ));
            }
            let (pw, shown) = match password {
                Some(p) => (p, false),
                None => (generated_password(), true),
            };
            let entry = hashed_entry(&name, &domain, &pw, display_name);
            if let Some(p) = entry.problem() {
                return Err(p);
            }
            file.users.push(entry);
            write_users_file(&path, &file)?;
            println!("added {name}@{domain} to {} ({hint})", path.display());
            if shown {
                println!("password: {pw}");
            }
            if in_config(&name) {
                println!("note: {name} is also in the config file; this entry overrides it");
            }
        }
        UserCommand::Del { name } => {
            let before = file.users.len();
            file.users.retain(|u| u.name != name);
            if file.users.len() == before {
                return Err(if in_config(&name) {
                    format!(
                        "user {name} is defined in the config file {}; remove it there",
                        loaded.source
                    )
                } else {
                    format!("no user {name} in {}", path.display())
                });
            }
            write_users_file(&path, &file)?;
            println!("removed {name}@{domain} ({hint})");
            if in_config(&name) {
                println!(
                    "note: {name} is still defined in the config file {}",
                    loaded.source
                );
            }
        }
        UserCommand::Passwd { name, password } => {
            let display = file
                .users
                .iter()
                .find(|u| u.name == name)
                .map(|u| u.display_name.clone());
            let display = match display {
                Some(d) => d,
                None if in_config(&name) => loaded
                    .config
                    .users
                    .iter()
                    .find(|u| u.name == name)
                    .and_then(|u| u.display_name.clone()),
                None => return Err(format!("no user {name}; use `p2psip user add`")),
            };
            let (pw, shown) = match password {
                Some(p) => (p, false),
                None => (generated_password(), true),
            };
            file.users.retain(|u| u.name != name);
            file.users.push(hashed_entry(&name, &domain, &pw, display));
            write_users_file(&path, &file)?;
            println!(
                "password of {name}@{domain} changed in {} ({hint})",
                path.display()
            );
            if shown {
                println!("password: {pw}");
            }
        }
        UserCommand::List => {
            let users = load_users(loaded)?;
            let demo = demo_users(&users);
            for u in &users {
                let origin = if file.users.iter().any(|f| f.name == u.name) {
                    "users file"
                } else {
                    "config"
                };
                let mut line = format!("{}@{domain}\t{origin}", u.name);
                if let Some(d) = &u.display_name {
                    line.push_str(&format!("\t{d:?}"));
                }
                if demo.contains(&u.name) {
                    line.push_str("\tDEMO PASSWORD");
                }
                println!("{line}");
            }
        }
    }
    Ok(())
}
